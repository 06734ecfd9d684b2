"""AWS IoT Core on your laptop: topic rules evaluated for real on every published message.

``api.py`` holds ``IoTPlane`` (see ``docs/adding_a_service.md``): moto keeps
the rules (boto3 ``iot``), the plane checks them and runs them when a
message is published (boto3 ``iot-data`` ``Publish``). ``sql.py`` evaluates
IoT SQL on DuckDB, ``actions.py`` runs the actions (Kinesis, Firehose,
Lambda, SQS, S3, republish) against the stack, ``engine.py`` ties them
together and handles the error action.
"""
from .api import IoTPlane

__all__ = ["IoTPlane"]
