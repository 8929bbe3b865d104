"""Background work: staff notification of a new consultation request."""

from django.core.mail import send_mail
from django.tasks import task
from django.urls import reverse


@task
def notify_new_request(request_id: int) -> int:
    """Email the clinic's intake staff. The email carries no personal data, only a link."""
    from ketaflow.intake import selectors
    from ketaflow.intake.models import ConsultationRequest

    item = ConsultationRequest.objects.select_related("clinic").filter(pk=request_id).first()
    if item is None:
        return 0
    recipients = selectors.intake_staff_emails(item.clinic)
    if not recipients:
        return 0
    path = reverse("intake:request_detail", kwargs={"pk": item.pk})
    urgent = "URGENT (safety question answered) " if item.urgent else ""
    send_mail(
        subject=f"{urgent}New consultation request at {item.clinic.name}",
        message=(
            f"A new consultation request (#{item.pk}) is waiting in the intake queue of "
            f"{item.clinic.name}.\n\nSign in to ketaflow to read it: {path}\n\n"
            "This email holds no personal details by design."
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return len(recipients)
