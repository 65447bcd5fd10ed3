import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    """``inserted_at``: when the database wrote a row, by its own clock.

    Added without a default first, so that existing rows keep NULL (they committed long ago and
    belong in no late-commit margin) instead of all getting the migration's time; then the
    database default is set, which only new rows receive.
    """

    dependencies = [
        ("notifications", "0003_grouping"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="inserted_at",
            field=models.DateTimeField(editable=False, null=True, verbose_name="inserted at"),
        ),
        migrations.AlterField(
            model_name="notification",
            name="inserted_at",
            field=models.DateTimeField(
                db_default=django.db.models.functions.datetime.Now(),
                editable=False,
                null=True,
                verbose_name="inserted at",
            ),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                fields=["recipient", "inserted_at"], name="notif_recipient_inserted"
            ),
        ),
    ]
