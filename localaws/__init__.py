"""localaws: AWS data & analytics services on your laptop, on real engines.

Start here::

    import localaws
    stack = localaws.start()
    s3 = stack.client("s3")

See ``localaws/stack.py`` for the stack and the list of services, and
``docs/adding_a_service.md`` for how each service's real engine plugs in
behind moto's control plane (``localaws/core/plane.py``).
"""
from .stack import AwsStack, Stack, start

__version__ = "0.1.0"
__all__ = ["AwsStack", "Stack", "start", "__version__"]
