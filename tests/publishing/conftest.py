"""Object-store tests run against moto on loopback."""

from tests.support.s3_server import s3_server  # noqa: F401 -- fixture
