"""A stand-in for systemd-resolved on a private bus, for the tests: owns
org.freedesktop.resolve1 and records the link settings it is given.

    fake_resolved.py BUS_ADDRESS LOGFILE [SECONDS]

Each call appends one JSON line to LOGFILE: {"method": ..., "args": [...]}.
Exits after SECONDS (default 60)."""
import json
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

IFACE = "org.freedesktop.resolve1.Manager"


class Manager(dbus.service.Object):
    def __init__(self, bus, log):
        super().__init__(bus, "/org/freedesktop/resolve1")
        self.log = log

    def record(self, method, *args):
        with open(self.log, "a") as f:
            f.write(json.dumps({"method": method, "args": args}) + "\n")

    @dbus.service.method(IFACE, in_signature="ia(iay)", out_signature="")
    def SetLinkDNS(self, ifindex, addrs):
        self.record("SetLinkDNS", int(ifindex), [[int(fam), [int(b) for b in a]] for fam, a in addrs])

    @dbus.service.method(IFACE, in_signature="ia(sb)", out_signature="")
    def SetLinkDomains(self, ifindex, domains):
        self.record("SetLinkDomains", int(ifindex), [[str(d), bool(r)] for d, r in domains])

    @dbus.service.method(IFACE, in_signature="ib", out_signature="")
    def SetLinkDefaultRoute(self, ifindex, on):
        self.record("SetLinkDefaultRoute", int(ifindex), bool(on))

    @dbus.service.method(IFACE, in_signature="i", out_signature="")
    def RevertLink(self, ifindex):
        self.record("RevertLink", int(ifindex))


def main(argv):
    address, log = argv[0], argv[1]
    seconds = float(argv[2]) if len(argv) > 2 else 60.0
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    name = dbus.service.BusName("org.freedesktop.resolve1", bus)
    Manager(bus, log)
    open(log, "a").close()
    loop = GLib.MainLoop()
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    loop.run()
    del name
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
