"""The verifier models' admin (generator/verifier_admin.py): staff read every model, superusers activate and roll
back, what a model was fitted to is for superusers only."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
class TestVerifierModelAdmin:
    URL = "/admin/generator/verifiermodel/"

    @pytest.fixture
    def fitted(self, admin_user):
        from generator.core.codes import decision
        from generator.models import VerifierModel

        def make(model_id: str, scanned: int = 40) -> VerifierModel:
            return VerifierModel.objects.create(
                model_id=model_id, form=decision.DEFAULT_MODEL.form, bias=-4.0, weights=[["o_any", 1.0]],
                created_by=admin_user, source="sessions #1 Friday", label_count=scanned + 40, scanned_count=scanned,
                figures={"current": {"model": "logistic-v1-old", "balanced_accuracy": 0.71},
                         "cross_validated": {"balanced_accuracy": 0.86}})
        return make

    @pytest.fixture
    def staff(self, team_users):
        user = team_users.viewer  # staff with no Django permission at all: the models are still shown
        user.is_staff = True
        user.save()
        return user

    def activate(self, client, row, action: str = "activate"):
        return client.post(self.URL, {"action": action, "_selected_action": [row.pk]}, follow=True)

    def test_it_shows_staff_every_model_and_its_figures_read_only(self, client, staff, fitted):
        row = fitted("logistic-v1-aaaa1111")
        client.force_login(staff)
        body = client.get(self.URL).content.decode()
        assert "logistic-v1-aaaa1111" in body and "0.860" in body and "0.710" in body
        assert "the shipped default model" in body and "Roll back" not in body
        page = client.get(f"{self.URL}{row.pk}/change/")
        assert page.status_code == 200 and "0.86" in page.content.decode()
        assert client.post(f"{self.URL}{row.pk}/change/", {"bias": "9"}).status_code == 403
        assert client.get(f"{self.URL}add/").status_code == 403

    def test_which_labels_it_was_fitted_to_are_for_superusers_only(self, client, staff, admin_user, fitted):
        # The labels name other teams' sessions and images; staff neither see them nor filter on them.
        row = fitted("logistic-v1-aaaa1111")
        row.labels = ["Rival-poster.png"]
        row.save()
        client.force_login(staff)
        page = client.get(f"{self.URL}{row.pk}/change/").content.decode()
        assert "sessions #1 Friday" not in page and "Rival-poster.png" not in page
        assert client.get(f"{self.URL}?labels__icontains=Rival").status_code == 400
        assert client.get(f"{self.URL}?source__startswith=s").status_code == 400
        client.force_login(admin_user)
        page = client.get(f"{self.URL}{row.pk}/change/").content.decode()
        assert "sessions #1 Friday" in page and "Rival-poster.png" in page

    def test_who_fitted_it_is_for_superusers_only(self, client, staff, admin_user, fitted, team_users):
        # `qart_calibrate --user` names anyone: staff of every team read the name of another team's member who fitted
        # it, in the list and on its page, and `?created_by=<id>` told them which account it was.
        row = fitted("logistic-v1-aaaa1111")
        row.created_by = team_users.outsider
        row.save()
        client.force_login(staff)
        assert "outsider" not in client.get(self.URL).content.decode()
        assert "outsider" not in client.get(f"{self.URL}{row.pk}/change/").content.decode()
        assert client.get(f"{self.URL}?created_by={team_users.outsider.pk}").status_code == 400
        client.force_login(admin_user)
        assert "outsider" in client.get(self.URL).content.decode()

    @pytest.mark.parametrize("lookup", ["created_by", "created_by_id", "created_by_id__in", "created_by__id"])
    def test_it_refuses_staff_a_lookup_on_who_fitted_it_by_any_name(self, client, staff, fitted, team_users, lookup):
        # The column's own name (`created_by_id`) is a lookup Django allows as it allows any of the model's own: the
        # list shown or empty for `?created_by_id=<id>` said which account fitted which model.
        fitted("logistic-v1-aaaa1111")
        client.force_login(staff)
        assert client.get(f"{self.URL}?{lookup}={team_users.outsider.pk}").status_code == 400

    def test_it_refuses_staff_an_activation_with_one_message(self, client, staff, fitted):
        row = fitted("logistic-v1-aaaa1111")
        client.force_login(staff)
        body = self.activate(client, row).content.decode()
        assert "Only a superuser activates or rolls back a verifier model" in body
        row.refresh_from_db()
        assert not row.is_active

    def test_a_superuser_activates_and_rolls_back(self, client, admin_user, fitted):
        from generator import verifier_models

        first, second = fitted("logistic-v1-aaaa1111"), fitted("logistic-v1-bbbb2222")
        client.force_login(admin_user)
        self.activate(client, first)
        body = self.activate(client, second).content.decode()
        assert "Activated logistic-v1-bbbb2222: every team" in body
        assert verifier_models.active_row() == second and "Roll back" in client.get(self.URL).content.decode()
        assert client.get(f"{self.URL}rollback/").status_code == 405  # a change: POST only
        page = client.get(self.URL).content.decode()
        assert "A rollback returns to <strong>logistic-v1-aaaa1111</strong>" in page and 'id="verifier-history"' in page
        body = client.post(f"{self.URL}rollback/", follow=True).content.decode()
        assert "Rolled back: logistic-v1-aaaa1111 judges again" in body and verifier_models.active_row() == first
        assert "rolled back by admin" in body and "A rollback returns to the shipped default model" in body

    def test_it_needs_the_csrf_token_to_roll_back(self, admin_user, fitted):
        from django.test import Client

        from generator import verifier_models

        row = fitted("logistic-v1-aaaa1111")
        verifier_models.activate(row, admin_user)
        client = Client(enforce_csrf_checks=True)
        client.force_login(admin_user)
        assert client.post(f"{self.URL}rollback/").status_code == 403
        assert verifier_models.active_row() == row

    def test_it_activates_a_model_fitted_on_few_labels_only_anyway(self, client, admin_user, fitted):
        row = fitted("logistic-v1-aaaa1111", scanned=20)
        client.force_login(admin_user)
        body = self.activate(client, row).content.decode()
        assert "fewer than 30 of a class" in body and "Activate anyway" in body
        row.refresh_from_db()
        assert not row.is_active
        self.activate(client, row, "activate_anyway")
        row.refresh_from_db()
        assert row.is_active

    def test_it_refuses_to_delete_the_active_model(self, client, admin_user, fitted):
        from generator import verifier_models

        row = fitted("logistic-v1-aaaa1111")
        verifier_models.activate(row, admin_user)
        client.force_login(admin_user)
        client.post(f"{self.URL}{row.pk}/delete/", {"post": "yes"})
        assert verifier_models.active_row() == row

    def test_it_refuses_to_delete_a_model_a_rollback_would_return_to(self, client, admin_user, fitted):
        from generator import verifier_models
        from generator.models import VerifierModel

        first, second, unused = (fitted(f"logistic-v1-{c * 8}") for c in "abc")
        verifier_models.activate(first, admin_user)
        verifier_models.activate(second, admin_user)
        client.force_login(admin_user)
        assert client.post(f"{self.URL}{first.pk}/delete/", {"post": "yes"}).status_code == 403
        selected = {"action": "delete_selected", "_selected_action": [first.pk, unused.pk], "post": "yes"}
        assert client.post(self.URL, selected).status_code == 403  # Django's answer: one of them may not go
        assert VerifierModel.objects.filter(pk__in=[first.pk, unused.pk]).count() == 2
        client.post(self.URL, {**selected, "_selected_action": [unused.pk]})
        assert not VerifierModel.objects.filter(pk=unused.pk).exists()
        verifier_models.rollback(admin_user)  # second rolled back: no rollback returns to it, so it may go
        client.post(f"{self.URL}{second.pk}/delete/", {"post": "yes"})
        assert not VerifierModel.objects.filter(pk=second.pk).exists()
