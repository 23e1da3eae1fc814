from __future__ import annotations

from django.apps import AppConfig


class QartsiteConfig(AppConfig):
    name = "qartsite"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

        from qartsite.members import withdraw_deleted_senders_invitations, withdraw_invitations
        from qartsite.models import Membership
        from qartsite.tokens import revoke_on_new_password

        pre_save.connect(revoke_on_new_password, sender=get_user_model(), dispatch_uid="revoke-tokens-new-password")
        for signal, name in ((post_save, "save"), (post_delete, "delete")):  # an owner removed or demoted, on any
            # path (the team page, the admin, a shell): the invitations they sent go with their ownership
            signal.connect(withdraw_invitations, sender=Membership, dispatch_uid=f"withdraw-invitations-{name}")
        pre_delete.connect(withdraw_deleted_senders_invitations, sender=get_user_model(),
                           dispatch_uid="withdraw-invitations-account-deleted")
