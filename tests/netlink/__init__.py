"""The netlink layer's tests."""
