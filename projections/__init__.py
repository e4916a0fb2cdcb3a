"""Read models and compliance reports, built only from recorded events."""
