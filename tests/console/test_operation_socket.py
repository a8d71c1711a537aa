"""The operation page's websocket: progress re-rendered, output lines appended at once."""

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from console.asgi import application
from console.core.models import Environment
from console.operations.models import Operation

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True),
              pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture
def operation(admin):
    return Operation.objects.create(environment=Environment.local(), user=admin, username="admin",
                                    action="image.build", target_name="demo:1", state="running")


async def test_lines_are_appended_and_state_changes_re_render(admin_client, operation):
    cookie = (b"cookie", f"sessionid={admin_client.cookies['sessionid'].value}".encode())
    ws = WebsocketCommunicator(application, f"/ws/operations/{operation.pk}/",
                               headers=[(b"origin", b"http://localhost"), (b"host", b"localhost"), cookie])
    connected, _ = await ws.connect(timeout=10)
    assert connected
    first = await ws.receive_from(timeout=10)
    assert 'id="operation-progress"' in first and 'data-state="running"' in first
    assert 'id="operation-lines"' in first  # the place lines are appended to

    await get_channel_layer().group_send(operation.group, {"type": "operation.update", "kind": "line",
                                                           "text": "Step 1/3 : FROM <busybox>"})
    line = await ws.receive_from(timeout=10)
    assert 'hx-swap-oob="beforeend"' in line and "Step 1/3 : FROM &lt;busybox&gt;" in line

    await ws.send_to(text_data="hello")
    assert (await ws.receive_output(timeout=5))["code"] == 4400  # this socket only listens
