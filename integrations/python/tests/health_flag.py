"""A health callback for the tests: unhealthy while the file named by $HEALTH_FLAG exists."""
import os


def healthy():
    return not os.path.exists(os.environ["HEALTH_FLAG"])


async def healthy_async():
    if os.path.exists(os.environ["HEALTH_FLAG"]):
        raise RuntimeError("flag file present")
    return True
