"""factory-boy factories for every model; apps add theirs below their section."""

import factory
from django.utils import timezone

from attribution.models import Affiliate, AffiliateStatus, Click, Player, PromoCode, TrackingLink
from events.models import ApiKey
from events.services import api_key_hash
from revvvs.models import Brand, Operator, User


class OperatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operator

    name = factory.Sequence(lambda n: f"Operator {n}")


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand

    operator = factory.SubFactory(OperatorFactory)
    name = factory.Sequence(lambda n: f"Brand {n}")
    default_landing_url = factory.Sequence(lambda n: f"https://brand{n}.example.com/welcome")
    allowed_domains = factory.LazyAttribute(lambda b: b.default_landing_url.split("/")[2])


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class ManagerFactory(UserFactory):
    is_staff = True
    operator = factory.SubFactory(OperatorFactory)


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """`ApiKeyFactory(raw_key=...)`; the clear key is kept on the instance as `.raw_key`."""

    class Meta:
        model = ApiKey
        exclude = ["raw_key"]

    operator = factory.SubFactory(OperatorFactory)
    raw_key = factory.Sequence(lambda n: f"rv_test_key_{n:06d}_abcdefghijklmnopqrstuvwxyz")
    prefix = factory.LazyAttribute(lambda k: k.raw_key[:10])
    key_hash = factory.LazyAttribute(lambda k: api_key_hash(k.raw_key))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        obj = super()._create(model_class, *args, **kwargs)
        return obj

    @factory.post_generation
    def remember_raw_key(obj, create, extracted, **kwargs):  # noqa: N805
        pass


class AffiliateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Affiliate

    operator = factory.SubFactory(OperatorFactory)
    user = factory.SubFactory(UserFactory)
    email = factory.LazyAttribute(lambda a: a.user.email)
    status = AffiliateStatus.APPROVED
    status_changed_at = factory.LazyFunction(timezone.now)


class TrackingLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrackingLink

    affiliate = factory.SubFactory(AffiliateFactory)
    brand = factory.SubFactory(BrandFactory, operator=factory.SelfAttribute("..affiliate.operator"))
    code = factory.Sequence(lambda n: f"lnk{n:06d}")
    landing_url = factory.LazyAttribute(lambda link: link.brand.default_landing_url)


class PromoCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromoCode

    affiliate = factory.SubFactory(AffiliateFactory)
    operator = factory.SelfAttribute("affiliate.operator")
    brand = factory.SubFactory(BrandFactory, operator=factory.SelfAttribute("..affiliate.operator"))
    code = factory.Sequence(lambda n: f"PROMO{n}")


class ClickFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Click

    link = factory.SubFactory(TrackingLinkFactory)
    affiliate = factory.SelfAttribute("link.affiliate")
    brand = factory.SelfAttribute("link.brand")
    created_at = factory.LazyFunction(timezone.now)


class PlayerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Player

    brand = factory.SubFactory(BrandFactory)
    external_ref = factory.Sequence(lambda n: f"player_{n:06d}")


# --- events / tenancy admin ----------------------------------------------------------------


class SuperuserFactory(UserFactory):
    is_staff = True
    is_superuser = True


class PermittedManagerFactory(ManagerFactory):
    """A manager holding every model permission of the programme's apps, users included
    (seed_demo's managers lack the user permissions), to prove that scoping, not missing
    permissions, hides other operators' rows."""

    @factory.post_generation
    def permissions(obj, create, extracted, **kwargs):  # noqa: N805
        from django.contrib.auth.models import Permission

        if create:
            obj.user_permissions.add(
                *Permission.objects.filter(
                    content_type__app_label__in=["revvvs", "events", "attribution", "commissions"]
                )
            )
