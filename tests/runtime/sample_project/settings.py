"""A sample oTree project made for the runtime contract test: one two-player app with bots."""
from os import environ

SESSION_CONFIGS = [
    dict(name="guess", app_sequence=["guess"], num_demo_participants=2),
]
SESSION_CONFIG_DEFAULTS = dict(real_world_currency_per_point=1.00, participation_fee=0.00, doc="")
PARTICIPANT_FIELDS = []
SESSION_FIELDS = []
LANGUAGE_CODE = "en"
REAL_WORLD_CURRENCY_CODE = "EUR"
USE_POINTS = True
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = environ.get("OTREE_ADMIN_PASSWORD")
DEMO_PAGE_INTRO_HTML = ""
SECRET_KEY = "oforest-runtime-test-project"
INSTALLED_APPS = ["otree"]
# headless Chromium for `otree browser_bots` (set by the test)
BROWSER_COMMAND = environ.get("OFOREST_BROWSER_COMMAND")
