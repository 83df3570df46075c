"""Form data for the commission admin tests: the plan form, the affiliate page as sent."""


def plan_form(**fields) -> dict:
    """The plan admin's add form, with no tiers unless `fields` add them."""
    return {
        "admin_fee_percent": "0",
        "min_first_deposit": "0",
        "min_total_deposits": "0",
        "qualification_days": "30",
        "clawback_days": "90",
        "tier_basis": "ngr",
        "tier_mode": "tiered",
        "sub_affiliate_rate": "0",
        "tiers-TOTAL_FORMS": "0",
        "tiers-INITIAL_FORMS": "0",
        **fields,
    }


def affiliate_page_data(client, affiliate) -> dict:
    """The affiliate change page's POST data as the browser would send it unchanged."""
    page = client.get(f"/admin/attribution/affiliate/{affiliate.pk}/change/")
    form = page.context["adminform"].form
    data = {
        name: ("" if value is None else value)
        for name, value in form.initial.items()
        if name in form.fields and name != "password"
    }
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({f"{management.prefix}-{k}": v for k, v in management.initial.items()})
        for inline_form in formset.formset.forms:
            for name in inline_form.fields:
                value = inline_form[name].value()
                data[inline_form.add_prefix(name)] = "" if value is None else value
    return data
