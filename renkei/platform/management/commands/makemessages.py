"""``makemessages`` that also knows ``_l``, the alias of ``gettext_lazy`` in form definitions
(``from django.utils.translation import gettext_lazy as _l``); xgettext finds only the names it
is told. See "Translations" in README.md."""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=_l"]
