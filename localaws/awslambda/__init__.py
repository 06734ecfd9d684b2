"""AWS Lambda on your laptop: Python handlers really run, in child processes.

Importing this package registers the Lambda data plane with the stack
(see ``localaws/core/registry.py``); ``api.py`` holds the boto3-facing
behaviour, ``engine.py`` the real execution, ``bootstrap.py`` the runtime
that runs inside each invocation, ``package.py`` builds .zip packages.
"""
from .api import LambdaRuntime
from .package import zip_package

__all__ = ["LambdaRuntime", "zip_package"]
