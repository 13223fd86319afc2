"""Every feature is one module here; this list is the registry (order = load order)."""

from phonebridge.core.plugin import Plugin

from .battery import BatteryPlugin
from .clipboard import ClipboardPlugin
from .connectivity import ConnectivityPlugin
from .findmyphone import FindMyPhonePlugin
from .notifications import NotificationsPlugin
from .ping import PingPlugin
from .share import SharePlugin
from .sftp import SftpPlugin
from .sms import SmsPlugin
from .contacts import ContactsPlugin
from .telephony import TelephonyPlugin

ALL_PLUGINS: tuple[type[Plugin], ...] = (
    PingPlugin,
    BatteryPlugin,
    ConnectivityPlugin,
    FindMyPhonePlugin,
    ClipboardPlugin,
    NotificationsPlugin,
    TelephonyPlugin,
    SharePlugin,
    SmsPlugin,
    ContactsPlugin,
    SftpPlugin,
)


def capabilities(plugins: tuple[type[Plugin], ...] = ALL_PLUGINS) -> tuple[frozenset[str], frozenset[str]]:
    """(incoming, outgoing) capability lists for our identity, computed from the plugins."""
    incoming: set[str] = set()
    outgoing: set[str] = set()
    for plugin in plugins:
        incoming |= plugin.info.incoming
        outgoing |= plugin.info.outgoing
    return frozenset(incoming), frozenset(outgoing)
