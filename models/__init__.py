"""Sequence models built only from minigrad ops: BPTT comes for free from ``backward``.

    import models
    rnn = models.LSTM(10, 20, num_layers=2)
    out, (h_n, c_n) = rnn(x, truncate=5)          # detach the state every 5 steps
    state = models.detach_state((h_n, c_n))        # carry into the next window, cut

Cells (one step), layers (a loop over time), truncation (where the gradient path is cut),
architectures from the lecture notes, and readouts/losses for sequence tasks.
(``models.reference`` holds hand-written numpy BPTT to check all of this against.)
"""

from .architectures import AttentionRNN, InputAttentionRNN, ResidualRNN, SkipRNN, orthogonal_init_
from .cells import GRUCell, LSTMCell, RNNCell, gru_step, lstm_step, rnn_step
from .heads import LastStepRegression, Readout, last_step, sequence_cross_entropy
from .rnn import GRU, LSTM, RNN, StepStates
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
