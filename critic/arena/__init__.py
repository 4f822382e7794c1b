"""``critic arena``: evaluating models with the judge.

Several models' answers to the same questions are judged pairwise (every model against a
baseline, or round robin), each comparison in both orders by critic's swap, and the
judgments are kept in the output folder as a content-keyed cache. From them: win/tie/loss
counts, win rates as AlpacaEval computes them, Bradley-Terry ratings as Chatbot Arena's
``compute_mle_elo`` fits them, bootstrap intervals over questions, length-controlled win
rates and style control, and the judge's health per model. Judgments made elsewhere
(Arena-Hard, AlpacaEval, Chatbot-Arena files) give the same leaderboard without a model.

Modules, one concept each: :mod:`~critic.arena.answers` (reading answers and questions),
:mod:`~critic.arena.join`, :mod:`~critic.arena.pairing` (who meets whom),
:mod:`~critic.arena.store` (judgments.jsonl), :mod:`~critic.arena.judging`,
:mod:`~critic.arena.battles`, :mod:`~critic.arena.winrates`, :mod:`~critic.arena.ratings`,
:mod:`~critic.arena.style` (length and style control), :mod:`~critic.arena.leaderboard`,
:mod:`~critic.arena.external` (judgments made elsewhere), :mod:`~critic.arena.reports`,
:mod:`~critic.arena.run` (the two entry points).
"""

from critic.arena.leaderboard import Board, Leaderboard, ModelEntry
from critic.arena.run import ArenaPlan, ArenaRun, arena_from_judgments, judge_plan, prepare_arena, run_arena

__all__ = ["ArenaPlan", "ArenaRun", "Board", "Leaderboard", "ModelEntry", "arena_from_judgments", "judge_plan",
           "prepare_arena", "run_arena"]
