"""The order `numpy.random.default_rng(seed).permutation(n)` gives, and the first `integers(0, n)`, in plain Python.

Recorded episodes name their option letters by this order, so it must stay numpy's exactly (tests compare the two over
many seeds and sizes); numpy itself costs more to seed than the rest of a console episode's start. The steps are
numpy's: SeedSequence's entropy pool, PCG64 (XSL-RR) seeded from it, and a Fisher-Yates shuffle drawing bounded
integers by masked rejection, 32 bits at a time.
"""

from __future__ import annotations

from functools import lru_cache

_M32 = 0xFFFF_FFFF
_M64 = 0xFFFF_FFFF_FFFF_FFFF
_M128 = (1 << 128) - 1
# SeedSequence's constants (a pool of four 32-bit words)
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R, _XSHIFT, _POOL_SIZE = 0xCA01F9DD, 0x4973F715, 16, 4
_PCG_MULT = (2549297995355413924 << 64) | 4865540595714422341


@lru_cache(maxsize=4096)  # runs reuse their seeds across scenarios
def permutation(seed: int, n: int) -> tuple[int, ...]:
    """`tuple(numpy.random.default_rng(seed).permutation(n))` for a seed >= 0."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    order = list(range(n))
    if n < 2:
        return tuple(order)
    state, inc = _seeded_generator(seed)
    half = None  # the upper 32 bits of the last 64-bit output, not yet used (numpy's next_uint32)
    for i in range(n - 1, 0, -1):  # Fisher-Yates; j uniform in [0, i] by masked rejection (numpy's random_interval)
        mask = (1 << i.bit_length()) - 1
        while True:
            if i > _M32 or half is None:
                state, value = _pcg64_next(state, inc)
                if i <= _M32:
                    half, value = value >> 32, value & _M32
            else:
                value, half = half, None
            j = value & mask
            if j <= i:
                break
        order[i], order[j] = order[j], order[i]
    return tuple(order)


@lru_cache(maxsize=4096)
def first_integer(seed: int, n: int) -> int:
    """`int(numpy.random.default_rng(seed).integers(0, n))` for a seed >= 0 and 1 <= n <= 2**32 (the env's pick of a
    scenario): numpy's 32-bit draw bounded by Lemire's method, each 64-bit output split low half first."""
    if seed < 0 or not 1 <= n <= 1 << 32:
        raise ValueError(f"first_integer needs seed >= 0 and 1 <= n <= 2**32, got seed {seed}, n {n}")
    if n == 1:
        return 0
    state, inc = _seeded_generator(seed)
    half = None
    threshold = None
    while True:
        if half is None:
            state, value = _pcg64_next(state, inc)
            half, drawn = value >> 32, value & _M32
        else:
            drawn, half = half, None
        if n == 1 << 32:  # the whole 32-bit range: the draw itself
            return drawn
        scaled = drawn * n
        leftover = scaled & _M32
        if leftover >= n:
            return scaled >> 32
        if threshold is None:
            threshold = ((1 << 32) - n) % n
        if leftover >= threshold:
            return scaled >> 32


@lru_cache(maxsize=256)  # an env over a suite draws its scenario and shuffles its options from one seed
def _seeded_generator(seed: int) -> tuple[int, int]:
    """PCG64's state and increment as numpy.random.default_rng(seed) starts them."""
    return _pcg64_seeded(_seed_words(seed))


def _seed_words(seed: int) -> tuple[int, int, int, int]:
    """SeedSequence(seed).generate_state(4, uint64)."""
    entropy = [seed & _M32]
    while seed := seed >> 32:
        entropy.append(seed & _M32)
    if len(entropy) <= _POOL_SIZE:  # every seed below 2**128: no entropy past the pool
        return _seed_words_of_pool(*entropy, *[0] * (_POOL_SIZE - len(entropy)))
    # The pool's words, then the entropy past the pool (mixed into every pool word in turn)
    mixed = [*entropy[:_POOL_SIZE], *[0] * (_POOL_SIZE - len(entropy)), *entropy[_POOL_SIZE:]]
    hashes = iter(_hash_constants(_INIT_A, _MULT_A, _POOL_SIZE * len(mixed)))  # each word once, then its mixes
    pool = []
    for word in mixed[:_POOL_SIZE]:
        before, after = next(hashes)
        word = ((word ^ before) * after) & _M32
        pool.append(word ^ (word >> _XSHIFT))
    sources = [(src, None) for src in range(_POOL_SIZE)] + [(None, word) for word in mixed[_POOL_SIZE:]]
    for src, extra in sources:
        for dst in range(_POOL_SIZE):
            if src == dst:
                continue
            before, after = next(hashes)
            word = (((pool[src] if src is not None else extra) ^ before) * after) & _M32
            word ^= word >> _XSHIFT
            result = (_MIX_MULT_L * pool[dst] - _MIX_MULT_R * word) & _M32
            pool[dst] = result ^ (result >> _XSHIFT)
    halves = []
    for k, (before, after) in enumerate(_hash_constants(_INIT_B, _MULT_B, 8)):
        word = ((pool[k % _POOL_SIZE] ^ before) * after) & _M32
        halves.append(word ^ (word >> _XSHIFT))
    return tuple(halves[k] | halves[k + 1] << 32 for k in range(0, 8, 2))  # type: ignore[return-value]


def _seed_words_of_pool(*words: int) -> tuple[int, int, int, int]:
    """_seed_words for entropy that fills the pool alone: the same hashes and mixes in the same order, with the hash
    constants (the same for every seed) looked up instead of stepped."""
    constants = _hash_constants(_INIT_A, _MULT_A, 4 * _POOL_SIZE)
    pool = []
    for word, (before, after) in zip(words, constants[:_POOL_SIZE], strict=True):
        word = ((word ^ before) * after) & _M32
        pool.append(word ^ (word >> _XSHIFT))
    for (src, dst), (before, after) in zip(_MIX_ORDER, constants[_POOL_SIZE:], strict=True):
        word = ((pool[src] ^ before) * after) & _M32
        result = (_MIX_MULT_L * pool[dst] - _MIX_MULT_R * (word ^ (word >> _XSHIFT))) & _M32
        pool[dst] = result ^ (result >> _XSHIFT)
    halves = []
    for word, (before, after) in zip(pool + pool, _hash_constants(_INIT_B, _MULT_B, 8), strict=True):
        word = ((word ^ before) * after) & _M32
        halves.append(word ^ (word >> _XSHIFT))
    return (halves[0] | halves[1] << 32, halves[2] | halves[3] << 32, halves[4] | halves[5] << 32,
            halves[6] | halves[7] << 32)


_MIX_ORDER = tuple((src, dst) for src in range(_POOL_SIZE) for dst in range(_POOL_SIZE) if src != dst)


@lru_cache(maxsize=64)
def _hash_constants(start: int, multiplier: int, count: int) -> tuple[tuple[int, int], ...]:
    """The hash constant before and after each of SeedSequence's first `count` hashes: it steps the same way whatever
    is hashed, so it is worked out once, not per seed."""
    pairs, constant = [], start
    for _ in range(count):
        stepped = (constant * multiplier) & _M32
        pairs.append((constant, stepped))
        constant = stepped
    return tuple(pairs)


def _pcg64_next(state: int, inc: int) -> tuple[int, int]:
    """PCG64's next state and its 64-bit output (XSL-RR)."""
    state = (state * _PCG_MULT + inc) & _M128
    xored, rot = ((state >> 64) ^ state) & _M64, state >> 122
    return state, ((xored >> rot) | (xored << (64 - rot))) & _M64


def _pcg64_seeded(words: tuple[int, int, int, int]) -> tuple[int, int]:
    """PCG64's state and increment after numpy's seeding (pcg_setseq_128_srandom_r)."""
    init_state, init_seq = (words[0] << 64) | words[1], (words[2] << 64) | words[3]
    inc = ((init_seq << 1) | 1) & _M128
    return ((inc + init_state) * _PCG_MULT + inc) & _M128, inc  # state 0 stepped, plus init_state, stepped
