from __future__ import annotations

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

        from campaigns.models import Campaign, Placement
        from campaigns.redirects import forget_links
        from campaigns.rollup_rebuilds import team_saved
        from campaigns.rollups import placement_deleting
        from campaigns.team_rollups import campaign_saving
        from qartsite.models import Team

        for model in (Campaign, Placement):
            post_save.connect(forget_links, sender=model, dispatch_uid=f"forget-links-save-{model.__name__}")
            post_delete.connect(forget_links, sender=model, dispatch_uid=f"forget-links-delete-{model.__name__}")
        pre_delete.connect(placement_deleting, sender=Placement, dispatch_uid="campaign-rollups-placement-deleting")
        pre_save.connect(campaign_saving, sender=Campaign, dispatch_uid="team-rollups-campaign-saving")
        post_save.connect(team_saved, sender=Team, dispatch_uid="rollups-team-saved")
