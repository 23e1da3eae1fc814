"""What is stored of webhooks: names the admin shows."""

from __future__ import annotations

from campaigns.webhook_models import WebhookDelivery


def test_the_admin_names_webhook_deliveries_in_english():
    assert WebhookDelivery._meta.verbose_name_plural == "webhook deliveries"
