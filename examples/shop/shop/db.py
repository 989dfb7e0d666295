"""Where the shop keeps its data: one SQLite file shared by every release on a machine."""

import os
import sqlite3


def data_dir():
    # Sacar's scripts get SACAR_RELEASE_DIR ($SACAR_ROOT/shop/releases/<sha>); next to the
    # releases is a stable place. The service sets SHOP_DATA_DIR itself (shop.service).
    if "SHOP_DATA_DIR" in os.environ:
        return os.environ["SHOP_DATA_DIR"]
    release = os.environ.get("SACAR_RELEASE_DIR")
    if release:
        return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(release))), "shared")
    return "/var/lib/shop"


def path():
    return os.path.join(data_dir(), "shop.sqlite3")


def connect():
    return sqlite3.connect(path())
