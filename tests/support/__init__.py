"""What the tests share that is not a test: the secret scanner."""
