"""Handler sources of Athena data source connectors that run as Lambda functions.

Each ``*_connector.py`` is a complete Lambda handler (``lambda_handler``)
speaking the request protocol described in ``localaws/athena/federated.py``.
They are zipped into deployment packages, not imported by localaws:
``zip_package({"connector.py": federated.connector_source("dynamodb")})``.
"""
