"""AWS Lambda on your laptop: Python handlers really run, in child processes.

``api.py`` holds the boto3-facing behaviour (``LambdaPlane``, see
``docs/adding_a_service.md``), ``engine.py`` the real execution, ``bootstrap.py`` the runtime
that runs inside each invocation, ``streams.py`` the Kinesis event source
mapping poller, ``package.py`` builds .zip packages.
"""
from .api import LambdaPlane
from .package import zip_package

__all__ = ["LambdaPlane", "zip_package"]
