from otree.api import BaseConstants, BaseGroup, BasePlayer, BaseSubsession, Page, WaitPage, models

doc = "Two players guess a number; the wait page (a websocket) sums the guesses."


class C(BaseConstants):
    NAME_IN_URL = "guess"
    PLAYERS_PER_GROUP = 2
    NUM_ROUNDS = 1


class Subsession(BaseSubsession):
    pass


class Group(BaseGroup):
    total = models.IntegerField(initial=0)


class Player(BasePlayer):
    guess = models.IntegerField(min=0, max=100)


def set_total(group: Group):
    group.total = sum(p.guess for p in group.get_players())


class Guess(Page):
    form_model = "player"
    form_fields = ["guess"]


class ResultsWaitPage(WaitPage):
    after_all_players_arrive = set_total


class Results(Page):
    pass


page_sequence = [Guess, ResultsWaitPage, Results]
