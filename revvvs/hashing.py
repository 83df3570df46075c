import hashlib
import hmac

from django.conf import settings


def ip_hmac(ip: str) -> str:
    """HMAC-SHA256 of an IP address with the server secret: matchable, never reversible
    by enumerating the address space without the secret."""
    return hmac.new(settings.IP_HASH_SECRET.encode(), ip.encode(), hashlib.sha256).hexdigest()


def secret_hmac(data: bytes) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), data, hashlib.sha256).hexdigest()
