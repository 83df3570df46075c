import hashlib
import hmac
import ipaddress

from django.conf import settings


def ip_canonical(value: str) -> str:
    """The canonical text of an IP address, IPv4 inside IPv6 (`::ffff:203.0.113.7`, what a
    dual-stack socket reports for an IPv4 visitor) as plain IPv4, so that the click and the
    operator's registration hash alike. Raises ValueError when it is not an address."""
    address = ipaddress.ip_address(value)
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def ip_hmac(ip: str) -> str:
    """HMAC-SHA256 of an IP address with the server secret: matchable, never reversible
    by enumerating the address space without the secret."""
    return hmac.new(settings.IP_HASH_SECRET.encode(), ip.encode(), hashlib.sha256).hexdigest()


def secret_hmac(data: bytes) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), data, hashlib.sha256).hexdigest()
