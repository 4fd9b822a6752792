"""
deepcore engine (private; use the deepcore package)
"""
from __future__ import annotations
import collections.abc
import enum
import numpy
import numpy.typing
import typing
__all__: list[str] = ['Act', 'ActSpec', 'AugmentKind', 'AugmentSpec', 'BinaryOp', 'Cell', 'Dataset', 'FillMode', 'Interpolation', 'Loss', 'LossSpec', 'Merge', 'MergeOp', 'Metric', 'MetricSpec', 'Model', 'OpConstant', 'OpKind', 'OpStep', 'Opt', 'OptSpec', 'OutputMode', 'OutputProgram', 'Padding', 'ReduceOp', 'Schedule', 'ScheduleSpec', 'UnaryOp', 'activation', 'activation_grad', 'all_finite', 'allow_tf32', 'device_act_backward', 'device_add_batch_loss', 'device_affine', 'device_avgpool', 'device_avgpool_backward', 'device_batchnorm_backward', 'device_batchnorm_forward', 'device_bias_act', 'device_bidir_merge', 'device_broadcast_multiply', 'device_clip_by_norm', 'device_clip_by_value', 'device_col2im', 'device_col2im_1d', 'device_col_sum', 'device_conv_maxpool', 'device_copies', 'device_dropout', 'device_embedding_backward', 'device_embedding_forward', 'device_fill', 'device_gather_rows', 'device_gemm', 'device_gemm_seconds', 'device_im2col', 'device_im2col_1d', 'device_l1l2', 'device_loss', 'device_mask_rows', 'device_mask_weights', 'device_masked_mean_steps', 'device_maxpool', 'device_maxpool_backward', 'device_metric_update', 'device_multiply', 'device_name', 'device_not_implemented', 'device_optimizer_update', 'device_recurrent_step_backward', 'device_recurrent_step_forward', 'device_repeat_rows', 'device_repeat_rows_backward', 'device_roundtrip', 'device_sequence_mask', 'device_transpose', 'device_update_steps', 'gemm', 'get_num_threads', 'kernel_set', 'loss', 'metric', 'optimizer_slot_init', 'optimizer_slots', 'optimizer_step', 'schedule_value', 'set_allow_tf32', 'set_num_threads']
class Act(enum.IntEnum):
    elu = 3
    exponential = 13
    gelu = 12
    hard_sigmoid = 6
    leaky_relu = 2
    linear = 0
    relu = 1
    selu = 4
    sigmoid = 5
    softmax = 8
    softplus = 9
    softsign = 10
    step = 14
    swish = 11
    tanh = 7
class Cell(enum.IntEnum):
    gru = 2
    lstm = 1
    simple_rnn = 0
class Merge(enum.IntEnum):
    ave = 3
    concat = 0
    mul = 2
    sum = 1
class MergeOp(enum.IntEnum):
    add = 0
    average = 3
    maximum = 4
    minimum = 5
    multiply = 2
    subtract = 1
class UnaryOp(enum.IntEnum):
    abs = 1
    clip = 9
    copy = 14
    cos = 11
    exp = 4
    floor = 12
    log = 5
    log1p = 6
    negative = 0
    reciprocal = 8
    round = 13
    sign = 7
    sin = 10
    sqrt = 3
    square = 2
class BinaryOp(enum.IntEnum):
    add = 0
    divide = 3
    equal = 11
    first = 13
    greater = 7
    greater_equal = 8
    less = 9
    less_equal = 10
    maximum = 4
    minimum = 5
    multiply = 2
    not_equal = 12
    power = 6
    subtract = 1
class ReduceOp(enum.IntEnum):
    max = 2
    mean = 1
    min = 3
    sum = 0
class OpKind(enum.IntEnum):
    activation = 3
    binary = 1
    reduce = 2
    reshape = 4
    transpose = 5
    unary = 0
class Interpolation(enum.IntEnum):
    bicubic = 2
    bilinear = 0
    lanczos3 = 3
    lanczos5 = 4
    nearest = 1
class AugmentKind(enum.IntEnum):
    brightness = 6
    contrast = 5
    crop = 4
    flip = 0
    rotation = 1
    translation = 2
    zoom = 3
class FillMode(enum.IntEnum):
    constant = 2
    mirror = 4
    nearest = 3
    reflect = 0
    wrap = 1
class AugmentSpec:
    def __init__(self, kind: AugmentKind, lo: typing.Annotated[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], "FixedSize(2)"] = [0.0, 0.0], hi: typing.Annotated[collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], "FixedSize(2)"] = [0.0, 0.0], same_zoom: bool = False, flips: typing.SupportsInt | typing.SupportsIndex = 0, fill: FillMode = ..., fill_value: typing.SupportsFloat | typing.SupportsIndex = 0.0, bilinear: bool = True, value_lo: typing.SupportsFloat | typing.SupportsIndex = 0.0, value_hi: typing.SupportsFloat | typing.SupportsIndex = 255.0, height: typing.SupportsInt | typing.SupportsIndex = 0, width: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
class OutputMode(enum.IntEnum):
    count = 3
    int = 0
    multi_hot = 2
    one_hot = 1
class Padding(enum.IntEnum):
    causal = 2
    same = 1
    valid = 0
class Loss(enum.IntEnum):
    binary_crossentropy = 3
    categorical_crossentropy = 4
    given = 7
    hinge = 6
    huber = 2
    mean_absolute_error = 1
    mean_squared_error = 0
    sparse_categorical_crossentropy = 5
class Metric(enum.IntEnum):
    auc = 8
    binary_accuracy = 0
    categorical_accuracy = 1
    mean = 9
    mean_absolute_error = 4
    mean_squared_error = 3
    precision = 6
    recall = 7
    sparse_categorical_accuracy = 2
    top_k_categorical_accuracy = 5
class MetricSpec:
    weighted: bool
    def __init__(self, kind: Metric, threshold: typing.SupportsFloat | typing.SupportsIndex = 0.5, k: typing.SupportsInt | typing.SupportsIndex = 5, num_thresholds: typing.SupportsInt | typing.SupportsIndex = 200) -> None:
        ...
    @property
    def kind(self) -> Metric:
        ...
    @property
    def output(self) -> int:
        ...
    @output.setter
    def output(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def program(self) -> int:
        ...
    @program.setter
    def program(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class Opt(enum.IntEnum):
    Adagrad = 4
    Adam = 1
    AdamW = 2
    RMSprop = 3
    SGD = 0
class ActSpec:
    kind: Act
    def __init__(self, kind: Act, alpha: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> None:
        ...
    @property
    def alpha(self) -> float:
        ...
    @alpha.setter
    def alpha(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class OpStep:
    def __init__(self, kind: OpKind, code: typing.SupportsInt | typing.SupportsIndex = 0, a: typing.SupportsInt | typing.SupportsIndex = 0, b: typing.SupportsInt | typing.SupportsIndex = -1, p0: typing.SupportsFloat | typing.SupportsIndex = 0.0, p1: typing.SupportsFloat | typing.SupportsIndex = 0.0, act: ActSpec = ..., axes: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] = [], keepdims: bool = False) -> None:
        ...
class OpConstant:
    def __init__(self, arg0: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], arg1: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex]) -> None:
        ...
class OutputProgram:
    def __init__(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], arg2: collections.abc.Sequence[OpStep], arg3: collections.abc.Sequence[OpConstant]) -> None:
        ...
class LossSpec:
    def __init__(self, kind: Loss, from_logits: bool = False, delta: typing.SupportsFloat | typing.SupportsIndex = 1.0, sum: bool = False, weight: typing.SupportsFloat | typing.SupportsIndex = 1.0) -> None:
        ...
    @property
    def program(self) -> int:
        ...
    @program.setter
    def program(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def weight(self) -> float:
        ...
    @weight.setter
    def weight(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class Schedule(enum.IntEnum):
    constant = 0
    cosine_decay = 3
    exponential_decay = 1
    piecewise_constant_decay = 2
class ScheduleSpec:
    kind: Schedule
    staircase: bool
    warmup: bool
    def __init__(self) -> None:
        ...
    @property
    def alpha(self) -> float:
        ...
    @alpha.setter
    def alpha(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def boundaries(self) -> list[float]:
        ...
    @boundaries.setter
    def boundaries(self, arg0: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex]) -> None:
        ...
    @property
    def decay_rate(self) -> float:
        ...
    @decay_rate.setter
    def decay_rate(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def decay_steps(self) -> float:
        ...
    @decay_steps.setter
    def decay_steps(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def initial_learning_rate(self) -> float:
        ...
    @initial_learning_rate.setter
    def initial_learning_rate(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def values(self) -> list[float]:
        ...
    @values.setter
    def values(self, arg0: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex]) -> None:
        ...
    @property
    def warmup_steps(self) -> float:
        ...
    @warmup_steps.setter
    def warmup_steps(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def warmup_target(self) -> float:
        ...
    @warmup_target.setter
    def warmup_target(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class OptSpec:
    centered: bool
    kind: Opt
    nesterov: bool
    schedule: ScheduleSpec
    def __init__(self) -> None:
        ...
    @property
    def beta_1(self) -> float:
        ...
    @beta_1.setter
    def beta_1(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def beta_2(self) -> float:
        ...
    @beta_2.setter
    def beta_2(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def clipnorm(self) -> float:
        ...
    @clipnorm.setter
    def clipnorm(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def clipvalue(self) -> float:
        ...
    @clipvalue.setter
    def clipvalue(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def epsilon(self) -> float:
        ...
    @epsilon.setter
    def epsilon(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def global_clipnorm(self) -> float:
        ...
    @global_clipnorm.setter
    def global_clipnorm(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def initial_accumulator_value(self) -> float:
        ...
    @initial_accumulator_value.setter
    def initial_accumulator_value(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def learning_rate(self) -> float:
        ...
    @learning_rate.setter
    def learning_rate(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def momentum(self) -> float:
        ...
    @momentum.setter
    def momentum(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def rho(self) -> float:
        ...
    @rho.setter
    def rho(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def weight_decay(self) -> float:
        ...
    @weight_decay.setter
    def weight_decay(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class Dataset:
    @property
    def rows(self) -> int:
        ...
class Model:
    def __init__(self, device: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    def add_activation(self, arg0: ActSpec) -> None:
        ...
    def add_augment(self, spec: AugmentSpec, seed: typing.SupportsInt | typing.SupportsIndex | None = None) -> None:
        ...
    def add_batch_normalization(self, arg0: typing.SupportsFloat | typing.SupportsIndex, arg1: typing.SupportsFloat | typing.SupportsIndex, arg2: bool, arg3: bool) -> None:
        ...
    def add_bidirectional(self, merge: Merge, return_sequences: bool, cell: Cell, units: typing.SupportsInt | typing.SupportsIndex, act: Act, rec: Act, use_bias: bool, go_backwards: bool, bcell: Cell, bunits: typing.SupportsInt | typing.SupportsIndex, bact: Act, brec: Act, buse_bias: bool, bgo_backwards: bool, dropout: typing.SupportsFloat | typing.SupportsIndex = 0.0, recurrent_dropout: typing.SupportsFloat | typing.SupportsIndex = 0.0, seed: typing.SupportsInt | typing.SupportsIndex | None = None, bdropout: typing.SupportsFloat | typing.SupportsIndex = 0.0, brecurrent_dropout: typing.SupportsFloat | typing.SupportsIndex = 0.0, bseed: typing.SupportsInt | typing.SupportsIndex | None = None) -> None:
        ...
    def add_center_crop(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def add_concatenate(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def add_conv1d(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.SupportsInt | typing.SupportsIndex, arg2: typing.SupportsInt | typing.SupportsIndex, arg3: typing.SupportsInt | typing.SupportsIndex, arg4: Padding, arg5: ActSpec, arg6: bool) -> None:
        ...
    def add_conv2d(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.SupportsInt | typing.SupportsIndex, arg2: typing.SupportsInt | typing.SupportsIndex, arg3: typing.SupportsInt | typing.SupportsIndex, arg4: typing.SupportsInt | typing.SupportsIndex, arg5: bool, arg6: ActSpec, arg7: bool) -> None:
        ...
    def add_dense(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: ActSpec, arg2: bool) -> None:
        ...
    def add_dot(self, ax: typing.SupportsInt | typing.SupportsIndex, ay: typing.SupportsInt | typing.SupportsIndex, normalize: bool = False) -> None:
        ...
    def add_dropout(self, rate: typing.SupportsFloat | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex | None = None) -> None:
        ...
    def add_embedding(self, input_dim: typing.SupportsInt | typing.SupportsIndex, output_dim: typing.SupportsInt | typing.SupportsIndex, mask_zero: bool = False) -> None:
        ...
    def add_encoding(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: OutputMode, arg2: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex]) -> None:
        ...
    def add_global_average_pooling2d(self) -> None:
        ...
    def add_global_pooling1d(self, arg0: bool, arg1: bool) -> None:
        ...
    def add_masking(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    def add_merge(self, arg0: MergeOp) -> None:
        ...
    def add_normalization(self, arg0: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], arg1: bool, arg2: OpConstant | None, arg3: OpConstant | None) -> None:
        ...
    def add_ops(self, arg0: collections.abc.Sequence[OpStep], arg1: collections.abc.Sequence[OpConstant]) -> None:
        ...
    def add_pool1d(self, arg0: bool, arg1: typing.SupportsInt | typing.SupportsIndex, arg2: typing.SupportsInt | typing.SupportsIndex, arg3: bool) -> None:
        ...
    def add_pool2d(self, arg0: bool, arg1: typing.SupportsInt | typing.SupportsIndex, arg2: typing.SupportsInt | typing.SupportsIndex, arg3: typing.SupportsInt | typing.SupportsIndex, arg4: typing.SupportsInt | typing.SupportsIndex, arg5: bool) -> None:
        ...
    def add_recurrent(self, cell: Cell, units: typing.SupportsInt | typing.SupportsIndex, act: Act, rec: Act, use_bias: bool, return_sequences: bool, go_backwards: bool, dropout: typing.SupportsFloat | typing.SupportsIndex = 0.0, recurrent_dropout: typing.SupportsFloat | typing.SupportsIndex = 0.0, seed: typing.SupportsInt | typing.SupportsIndex | None = None) -> None:
        ...
    def add_reshape(self, arg0: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> None:
        ...
    def add_resizing(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.SupportsInt | typing.SupportsIndex, arg2: Interpolation, arg3: bool, arg4: bool, arg5: bool) -> None:
        ...
    def add_upsampling1d(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def build(self, arg0: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> None:
        ...
    def compile(self, arg0: collections.abc.Sequence[LossSpec | None], arg1: OptSpec, arg2: collections.abc.Sequence[MetricSpec]) -> None:
        ...
    def dataset(self, x: typing.Any, y: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, w: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None) -> Dataset:
        ...
    def evaluate(self, arg0: Dataset, arg1: typing.SupportsInt | typing.SupportsIndex) -> tuple:
        ...
    def evaluate_rows(self, data: Dataset, batch_size: typing.SupportsInt | typing.SupportsIndex, carry: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, first: typing.SupportsInt | typing.SupportsIndex = 0, count: typing.SupportsInt | typing.SupportsIndex = -1) -> tuple:
        ...
    def fit_epoch(self, data: Dataset, batch_size: typing.SupportsInt | typing.SupportsIndex, shuffle: bool, carry: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, stop_on_nonfinite: bool = False) -> tuple:
        ...
    def fit_rows(self, data: Dataset, batch_size: typing.SupportsInt | typing.SupportsIndex, order: typing.Annotated[numpy.typing.ArrayLike, numpy.int64] | None = None, first: typing.SupportsInt | typing.SupportsIndex = 0, count: typing.SupportsInt | typing.SupportsIndex = 0, carry: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None, stop_on_nonfinite: bool = False) -> tuple:
        ...
    def gradients(self, arg0: typing.Any, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg2: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None) -> tuple[float, numpy.typing.NDArray[numpy.float32]]:
        ...
    def last_batch(self, output: typing.SupportsInt | typing.SupportsIndex, part: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def last_rows(self) -> int:
        ...
    def optimizer_state(self) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def output_layer(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> int:
        ...
    def output_shape(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> list[int]:
        ...
    def param_info(self) -> list:
        ...
    def permutation(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.int64]:
        ...
    def plan(self, arg0: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> list:
        ...
    def predict(self, x: typing.Any, batch_size: typing.SupportsInt | typing.SupportsIndex, training: bool = False) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def read(self, states: bool = False) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def set_input_shapes(self, arg0: collections.abc.Sequence[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]]) -> None:
        ...
    def set_inputs(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> None:
        ...
    def set_label_columns(self, arg0: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> None:
        ...
    def set_mask_source(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def set_metrics(self, arg0: collections.abc.Sequence[MetricSpec]) -> None:
        ...
    def set_optimizer_state(self, arg0: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> None:
        ...
    def set_output_mask_source(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def set_outputs(self, arg0: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> None:
        ...
    def set_programs(self, arg0: collections.abc.Sequence[OutputProgram]) -> None:
        ...
    def set_regularizer(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.SupportsFloat | typing.SupportsIndex, arg2: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    def set_trainable(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: bool) -> None:
        ...
    def set_weight_source(self, arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def states(self) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def weights(self) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def write(self, values: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], states: bool = False) -> None:
        ...
    @property
    def built(self) -> bool:
        ...
    @property
    def compiled(self) -> bool:
        ...
    @property
    def draws(self) -> int:
        ...
    @draws.setter
    def draws(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def gradient_buffers(self) -> list[int]:
        ...
    @property
    def host_memory(self) -> bool:
        ...
    @property
    def iterations(self) -> int:
        ...
    @iterations.setter
    def iterations(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def learning_rate(self) -> float:
        ...
    @learning_rate.setter
    def learning_rate(self, arg1: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def num_outputs(self) -> int:
        ...
    @property
    def num_params(self) -> int:
        ...
    @property
    def seed(self) -> int:
        ...
    @seed.setter
    def seed(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
def _exiting() -> None:
    ...
@typing.overload
def activation(arg0: ActSpec, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    ...
@typing.overload
def activation(arg0: ActSpec, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> numpy.typing.NDArray[numpy.float32]:
    ...
@typing.overload
def activation_grad(arg0: ActSpec, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], arg2: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], arg3: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    ...
@typing.overload
def activation_grad(arg0: ActSpec, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg2: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg3: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> numpy.typing.NDArray[numpy.float32]:
    ...
def all_finite(arg0: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> bool:
    ...
def allow_tf32() -> bool:
    ...
def device_act_backward(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: ActSpec, arg2: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg3: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg4: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_add_batch_loss(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], arg2: typing.SupportsFloat | typing.SupportsIndex, arg3: typing.SupportsInt | typing.SupportsIndex, arg4: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    ...
def device_affine(device: typing.SupportsInt | typing.SupportsIndex, act: ActSpec, a: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, in_place: bool = False) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
    ...
def device_avgpool(device: typing.SupportsInt | typing.SupportsIndex, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], pool_h: typing.SupportsInt | typing.SupportsIndex, pool_w: typing.SupportsInt | typing.SupportsIndex, stride_h: typing.SupportsInt | typing.SupportsIndex, stride_w: typing.SupportsInt | typing.SupportsIndex, same: bool = False) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_avgpool_backward(device: typing.SupportsInt | typing.SupportsIndex, dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], height: typing.SupportsInt | typing.SupportsIndex, width: typing.SupportsInt | typing.SupportsIndex, pool_h: typing.SupportsInt | typing.SupportsIndex, pool_w: typing.SupportsInt | typing.SupportsIndex, stride_h: typing.SupportsInt | typing.SupportsIndex, stride_w: typing.SupportsInt | typing.SupportsIndex, same: bool = False) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_batchnorm_backward(device: typing.SupportsInt | typing.SupportsIndex, dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], xhat: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], inv_std: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], gamma: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, dx: bool = True, dgamma: bool = True, dbeta: bool = True) -> tuple[typing.Any, typing.Any, typing.Any]:
    ...
def device_batchnorm_forward(device: typing.SupportsInt | typing.SupportsIndex, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], gamma: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, beta: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, moving_mean: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], moving_var: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], training: bool, momentum: typing.SupportsFloat | typing.SupportsIndex = 0.99, epsilon: typing.SupportsFloat | typing.SupportsIndex = 0.001) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
    ...
def device_bias_act(device: typing.SupportsInt | typing.SupportsIndex, act: ActSpec, z: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, in_place: bool = False) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
    ...
def device_bidir_merge(device: typing.SupportsInt | typing.SupportsIndex, mode: Merge, a: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], b: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
    """
    Bidirectional's merge of a (rows, steps, ua) and b (rows, steps, ub; steps reversed) and its gradients for dy: (y, da, db).
    """
def device_broadcast_multiply(device: typing.SupportsInt | typing.SupportsIndex, a: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], m: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], a_strides: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], m_strides: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], out0: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_clip_by_norm(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg2: typing.SupportsFloat | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_clip_by_value(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg2: typing.SupportsFloat | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_col2im(device: typing.SupportsInt | typing.SupportsIndex, cols: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], batch: typing.SupportsInt | typing.SupportsIndex, height: typing.SupportsInt | typing.SupportsIndex, width: typing.SupportsInt | typing.SupportsIndex, channels: typing.SupportsInt | typing.SupportsIndex, kernel_h: typing.SupportsInt | typing.SupportsIndex, kernel_w: typing.SupportsInt | typing.SupportsIndex, stride_h: typing.SupportsInt | typing.SupportsIndex = 1, stride_w: typing.SupportsInt | typing.SupportsIndex = 1, same: bool = False) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_col2im_1d(device: typing.SupportsInt | typing.SupportsIndex, cols: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], batch: typing.SupportsInt | typing.SupportsIndex, steps: typing.SupportsInt | typing.SupportsIndex, channels: typing.SupportsInt | typing.SupportsIndex, kernel_size: typing.SupportsInt | typing.SupportsIndex, stride: typing.SupportsInt | typing.SupportsIndex = 1, dilation: typing.SupportsInt | typing.SupportsIndex = 1, padding: Padding = ...) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_col_sum(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_conv_maxpool(device: typing.SupportsInt | typing.SupportsIndex, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], kernel: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, relu: bool, stride_h: typing.SupportsInt | typing.SupportsIndex, stride_w: typing.SupportsInt | typing.SupportsIndex, same: bool, pool_h: typing.SupportsInt | typing.SupportsIndex, pool_w: typing.SupportsInt | typing.SupportsIndex, tile: typing.SupportsInt | typing.SupportsIndex = 1) -> typing.Any:
    ...
def device_copies(arg0: typing.SupportsInt | typing.SupportsIndex) -> tuple[int, int]:
    ...
def device_dropout(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.SupportsFloat | typing.SupportsIndex, arg2: typing.SupportsInt | typing.SupportsIndex, arg3: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
    ...
def device_embedding_backward(device: typing.SupportsInt | typing.SupportsIndex, idx: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], input_dim: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """
    The table's gradient (input_dim, dim): dy's rows added into those idx names, in order.
    """
def device_embedding_forward(device: typing.SupportsInt | typing.SupportsIndex, table: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], idx: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> list[float]:
    """
    The rows of table named by idx (shape idx.shape + (dim,)), as a flat list.
    """
def device_fill(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.SupportsInt | typing.SupportsIndex, arg2: typing.SupportsFloat | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_gather_rows(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg2: typing.Annotated[numpy.typing.ArrayLike, numpy.int64]) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_gemm(device: typing.SupportsInt | typing.SupportsIndex, a: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], b: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], trans_a: bool = False, trans_b: bool = False, alpha: typing.SupportsFloat | typing.SupportsIndex = 1.0, beta: typing.SupportsFloat | typing.SupportsIndex = 0.0, c: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_gemm_seconds(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.SupportsInt | typing.SupportsIndex, arg2: typing.SupportsInt | typing.SupportsIndex, arg3: typing.SupportsInt | typing.SupportsIndex, arg4: typing.SupportsInt | typing.SupportsIndex) -> float:
    ...
def device_im2col(device: typing.SupportsInt | typing.SupportsIndex, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], kernel_h: typing.SupportsInt | typing.SupportsIndex, kernel_w: typing.SupportsInt | typing.SupportsIndex, stride_h: typing.SupportsInt | typing.SupportsIndex = 1, stride_w: typing.SupportsInt | typing.SupportsIndex = 1, same: bool = False) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_im2col_1d(device: typing.SupportsInt | typing.SupportsIndex, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], kernel_size: typing.SupportsInt | typing.SupportsIndex, stride: typing.SupportsInt | typing.SupportsIndex = 1, dilation: typing.SupportsInt | typing.SupportsIndex = 1, padding: Padding = ...) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_l1l2(device: typing.SupportsInt | typing.SupportsIndex, w: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], g: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, l1: typing.SupportsFloat | typing.SupportsIndex, l2: typing.SupportsFloat | typing.SupportsIndex, acc: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> tuple[float, typing.Any]:
    ...
def device_loss(device: typing.SupportsInt | typing.SupportsIndex, spec: LossSpec, pred: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], probs: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, y: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, grad_scale: typing.SupportsFloat | typing.SupportsIndex = 1.0, want_grad: bool = True) -> tuple[float, typing.Any]:
    ...
def device_mask_rows(device: typing.SupportsInt | typing.SupportsIndex, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], mask: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> numpy.typing.NDArray[numpy.float32]:
    """
    x's rows where mask is 1, zeros elsewhere.
    """
def device_mask_weights(device: typing.SupportsInt | typing.SupportsIndex, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
    """
    (metric weights, loss weights) where the mask (rows, steps) reaches the loss.
    """
def device_masked_mean_steps(device: typing.SupportsInt | typing.SupportsIndex, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], mask: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
    """
    (y, dx): the mean over the steps to use of x (rows, steps, width) and its gradient.
    """
def device_maxpool(device: typing.SupportsInt | typing.SupportsIndex, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], pool_h: typing.SupportsInt | typing.SupportsIndex, pool_w: typing.SupportsInt | typing.SupportsIndex, stride_h: typing.SupportsInt | typing.SupportsIndex, stride_w: typing.SupportsInt | typing.SupportsIndex, same: bool = False) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.int32]]:
    ...
def device_maxpool_backward(device: typing.SupportsInt | typing.SupportsIndex, dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], argmax: typing.Annotated[numpy.typing.ArrayLike, numpy.int32], height: typing.SupportsInt | typing.SupportsIndex, width: typing.SupportsInt | typing.SupportsIndex, pool_h: typing.SupportsInt | typing.SupportsIndex, pool_w: typing.SupportsInt | typing.SupportsIndex, stride_h: typing.SupportsInt | typing.SupportsIndex, stride_w: typing.SupportsInt | typing.SupportsIndex, same: bool = False) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_metric_update(device: typing.SupportsInt | typing.SupportsIndex, spec: MetricSpec, pred: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None, state: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    ...
def device_multiply(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg2: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_name(arg0: typing.SupportsInt | typing.SupportsIndex) -> str:
    ...
def device_not_implemented(arg0: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_optimizer_update(device: typing.SupportsInt | typing.SupportsIndex, spec: OptSpec, lr: typing.SupportsFloat | typing.SupportsIndex, step: typing.SupportsInt | typing.SupportsIndex, w: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], g: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], slots: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float32]]) -> tuple[numpy.typing.NDArray[numpy.float32], list]:
    ...
def device_recurrent_step_backward(device: typing.SupportsInt | typing.SupportsIndex, cell: Cell, act: Act, rec: Act, z: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], dh: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, h: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, prev: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, state: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, dc: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
    """
    One backward step: (dz, dr (GRU's recurrent side, else zeros), dh, dc (LSTM; else dh)); z holds the forward's gates, h SimpleRNN's output, prev LSTM's c_{t-1} or GRU's h_{t-1}, state LSTM's c or GRU's rh.
    """
def device_recurrent_step_forward(device: typing.SupportsInt | typing.SupportsIndex, cell: Cell, act: Act, rec: Act, z: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], hr: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, prev: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, rbias: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, hprev: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None, mask: typing.Annotated[numpy.typing.ArrayLike, numpy.float32] | None = None) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
    """
    One forward step: (z after the step (the gates), h, state (LSTM's c, GRU's rh)); prev is LSTM's c_{t-1} or GRU's h_{t-1}, rbias GRU's recurrent bias, hprev SimpleRNN's and LSTM's h_{t-1} (what a masked sample keeps), mask one value per sample.
    """
def device_repeat_rows(device: typing.SupportsInt | typing.SupportsIndex, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], size: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_repeat_rows_backward(device: typing.SupportsInt | typing.SupportsIndex, dy: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], size: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_roundtrip(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_sequence_mask(device: typing.SupportsInt | typing.SupportsIndex, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], value: typing.SupportsFloat | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float32]:
    """
    The mask of x's positions (all axes but the last): 1 where any value differs from value.
    """
def device_transpose(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> numpy.typing.NDArray[numpy.float32]:
    ...
def device_update_steps(device: typing.SupportsInt | typing.SupportsIndex, spec: OptSpec, lrs: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], grads: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], w: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], slots: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float32]], l1: typing.SupportsFloat | typing.SupportsIndex, l2: typing.SupportsFloat | typing.SupportsIndex, max_norm: typing.SupportsFloat | typing.SupportsIndex, rate: typing.SupportsFloat | typing.SupportsIndex, seeds: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], captured: bool) -> tuple[numpy.typing.NDArray[numpy.float32], list, float, numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
    ...
def gemm(arg0: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> numpy.typing.NDArray[numpy.float32]:
    ...
def get_num_threads() -> int:
    ...
def kernel_set() -> str:
    ...
@typing.overload
def loss(arg0: LossSpec, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], arg2: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple:
    ...
@typing.overload
def loss(arg0: LossSpec, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg2: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> tuple:
    ...
def metric(arg0: MetricSpec, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg2: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> float:
    ...
def optimizer_slot_init(arg0: OptSpec, arg1: typing.SupportsInt | typing.SupportsIndex) -> float:
    ...
def optimizer_slots(arg0: OptSpec) -> int:
    ...
@typing.overload
def optimizer_step(arg0: OptSpec, arg1: typing.SupportsFloat | typing.SupportsIndex, arg2: typing.SupportsInt | typing.SupportsIndex, arg3: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], arg4: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], arg5: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float64]]) -> None:
    ...
@typing.overload
def optimizer_step(arg0: OptSpec, arg1: typing.SupportsFloat | typing.SupportsIndex, arg2: typing.SupportsInt | typing.SupportsIndex, arg3: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg4: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], arg5: collections.abc.Sequence[typing.Annotated[numpy.typing.ArrayLike, numpy.float32]]) -> None:
    ...
def schedule_value(arg0: ScheduleSpec, arg1: typing.SupportsInt | typing.SupportsIndex) -> float:
    ...
def set_allow_tf32(arg0: bool) -> None:
    ...
def set_num_threads(arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
