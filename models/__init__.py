"""Sequence models built only from minigrad ops: BPTT comes for free from ``backward``.

    import models
    rnn = models.LSTM(10, 20, num_layers=2)
    out, (h_n, c_n) = rnn(x, truncate=5)          # detach the state every 5 steps
    state = models.detach_state((h_n, c_n))        # carry into the next window, cut
    out, h_T = models.unroll(my_cell, x, h0, truncate=5)   # your own cell, the same loop

Cells (one step), layers (a loop over time), truncation (where the gradient path is cut),
architectures from the lecture notes, and readouts/losses for sequence tasks.
(``models.reference`` holds hand-written numpy BPTT to check all of this against.)

API:

    layers        RNN, GRU, LSTM (num_layers, bidirectional, batch_first, dropout, truncate=); StepStates
    cells         RNNCell, GRUCell, LSTMCell; the step equations rnn_step, gru_step, lstm_step
    your cell     unroll(cell, x, h0, truncate=None) -> (out, state); Unrolled(cell) for tbptt_train
    truncation    FixedTruncation, RandomTruncation, TruncationPolicy, as_truncation,
                  detach_state, reset_state, map_state, tbptt_train, TBPTTResult,
                  checkpointed, default_segments
    architectures ResidualRNN, SkipRNN, AttentionRNN, orthogonal_init_
    heads         Readout, LastStepRegression, last_step, sequence_cross_entropy
    training      train_step(model, loss_fn, optimizer, compile=True): one step, compiled by mg.compile
"""

from .architectures import AttentionRNN, InputAttentionRNN, ResidualRNN, SkipRNN, orthogonal_init_
from .cells import GRUCell, LSTMCell, RNNCell, gru_step, lstm_step, rnn_step
from .heads import LastStepRegression, Readout, last_step, sequence_cross_entropy
from .rnn import GRU, LSTM, RNN, StepStates
from .train_step import TrainStep, train_step
from .truncation import (
    FixedTruncation,
    RandomTruncation,
    TBPTTResult,
    TruncationPolicy,
    as_truncation,
    checkpointed,
    default_segments,
    detach_state,
    map_state,
    reset_state,
    tbptt_train,
)
from .unroll import Unrolled, unroll

__all__ = [
    "RNN",
    "GRU",
    "LSTM",
    "StepStates",
    "RNNCell",
    "GRUCell",
    "LSTMCell",
    "rnn_step",
    "gru_step",
    "lstm_step",
    "unroll",
    "Unrolled",
    "FixedTruncation",
    "RandomTruncation",
    "TruncationPolicy",
    "as_truncation",
    "detach_state",
    "reset_state",
    "map_state",
    "tbptt_train",
    "TBPTTResult",
    "checkpointed",
    "default_segments",
    "ResidualRNN",
    "SkipRNN",
    "AttentionRNN",
    "orthogonal_init_",
    "Readout",
    "LastStepRegression",
    "last_step",
    "sequence_cross_entropy",
    "train_step",
    "TrainStep",
]
