"""Processes and servers: the embedded NATS and OpenBao, the cluster harness and deploy renderers,
the service's read side, the e-mail notices' sender and the files of secrets under
``CUSTODIA_HOME``."""
