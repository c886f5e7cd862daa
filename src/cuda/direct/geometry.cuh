/*
 * direct/geometry.cuh - the geometry of the direct-correlation engine (forward and
 * grad-input), for host and device.  Per axis, forward splits the destination into stride
 * phases and grad-input splits the source into residue planes, so that in both passes a tap
 * is a fixed offset into a shared-memory halo tile and no product multiplies a zero.  Here:
 * the axes and phases, the source tile's sizes and pitch, the launch parameters
 * (direct_params: one struct for every kernel of the engine) and the tap tables of a phase.
 * docs/algorithm.md ("Forward and grad-input") derives it.
 */
#ifndef TCONV_CUDA_DIRECT_GEOMETRY_CUH
#define TCONV_CUDA_DIRECT_GEOMETRY_CUH

#include <stdint.h>

#define DIRECT_MAX_TAPS 64   /* taps of one phase kept in shared-memory tables */
#define DIRECT_MAX_GROUP 4   /* taps sharing one register window */
#define DIRECT_MAX_STRIDE 32 /* residues of an axis are a 32-bit mask */
#define DIRECT_RPX 8         /* consecutive pixels per thread */
#define DIRECT_TW 32         /* tile width: 4 threads x 8 pixels */
#define DIRECT_NARROW_ROWS 4 /* FMA float tiles' narrow tiles: 4 x the rows, 1 thread x 8 pixels wide */
#define DIRECT_WGMMA_PITCH 64 /* source row pitch of the warpgroup tile (direct/wgmma.cuh) */
#define DIRECT_MMA_EPI (64 * 36) /* per-warp epilogue tile of the MMA kernel */
#define DIRECT_STAGES 3                 /* shared-memory stages of the channel pipeline */
#define DIRECT_STAGE_BYTES (104 * 1024) /* all stages, so that 2 CTAs fit on an SM */
#define DIRECT_SPLIT_STAGE_BYTES (156 * 1024) /* one CTA per SM: fits sm_80's 163 KB per CTA */

enum { DIRECT_FORWARD = 0, DIRECT_GRAD_INPUT = 1 };

/* How a tile multiplies: FP32 FMA, one TF32 mma per product (tf32 mode), three
 * (3xTF32: big*big + big*small + small*big, fp32 mode), or Hopper's warpgroup mma on operands
 * in shared memory: one TF32 product (tf32 mode) or three FP16 products of split operands
 * (3xFP16, fp32 mode; direct/wgmma.cuh). */
enum { DIRECT_FMA = 0, DIRECT_MMA_TF32 = 1, DIRECT_MMA_3XTF32 = 2, DIRECT_WGMMA_TF32 = 3, DIRECT_WGMMA_3XFP16 = 4 };

__host__ __device__ constexpr bool direct_is_wgmma(int mma) { return mma == DIRECT_WGMMA_TF32 || mma == DIRECT_WGMMA_3XFP16; }

/* One spatial axis of the correlation. */
typedef struct direct_axis {
    int kernel, stride, padding, dilation;
    int src_size; /* H or W of the source tensor */
    int dst_size; /* H or W of the destination tensor */
} direct_axis;

/* What one axis looks like in one phase r. */
typedef struct direct_axis_plan {
    int ntaps;     /* taps of the kernel that land in this phase */
    int qmin, qmax;
    unsigned res;  /* mask of the source residues (planes) these taps read */
    int count;     /* destination indices in this phase */
} direct_axis_plan;

typedef struct direct_params {
    const void *src;    /* (N, groups*Cr, src H, src W) */
    const void *weight; /* (C_in, C_out/groups, kH, kW) */
    const void *bias;   /* (groups*Co) or NULL; forward only */
    void *dst;          /* (N, groups*Co, dst H, dst W) */
    int cr, co;         /* reduction and destination channels per group */
    int groups;
    int tw;             /* destination columns of a tile (in the padding before the int64s: moving
                         * the later fields' offsets made ptxas spill the FMA tiles) */
    /* the weight's strides between reduction channels, destination channels and groups */
    int64_t w_stride_red, w_stride_dst, w_stride_group;
    direct_axis ah, aw;
    int phases_h, phases_w; /* the strides for forward, 1 for grad-input */
    int tiles_h, tiles_w, co_tiles;
    int cc;             /* reduction channels per shared-memory stage */
    int stage;          /* elements of one stage */
    int wchunk;         /* workspace elements of one chunk's prepared weights */
    int nchunks;        /* chunks of cc reduction channels */
    const void *prepared; /* the weights prepared by direct_prepare_weights (workspace) */
    const struct direct_taps *taps; /* the tap tables of every phase (workspace) */
    int table;          /* elements of the shared-memory stages, where the tile table starts */
    int tf32;           /* round both operands to nearest TF32 */
    const unsigned *wmax; /* 3xFP16: the weights' largest magnitude, float bits (workspace) */
    /* the last column strip's own tiles, whose tap tables follow the others' (0: none) */
    int last_pitch;     /* tf32 warpgroup tile: their source pitch, under DIRECT_WGMMA_PITCH */
    int tiles_hn;       /* FMA float tiles: narrow tiles per phase */
    int pairs;          /* FMA float tiles: source rows of even pitch, windows read 8 bytes at a time */
} direct_params;

/* Whether the last column strip's tiles have tap tables of their own (after the others'). */
__host__ __device__ inline bool direct_last_tables(const direct_params &P) { return P.last_pitch || P.tiles_hn; }

/* Tap k of axis a in phase r: returns 0 when it does not land, else its residue and q. */
__host__ __device__ inline int direct_tap(const direct_axis *a, int mode, int r, int k, int *res, int *q)
{
    const int s = a->stride;
    if (mode == DIRECT_FORWARD) {
        const int num = r + a->padding - k * a->dilation; /* = stride * (source index - i') */
        if (num % s != 0) return 0;
        *res = 0;
        *q = num / s;
        return 1;
    }
    const int num = k * a->dilation - a->padding; /* source = stride*i + num */
    const int m = ((num % s) + s) % s;
    *res = m;
    *q = (num - m) / s;
    return 1;
}

/* Destination indices of phase r along an axis. */
__host__ __device__ inline int direct_count(const direct_axis *a, int mode, int r)
{
    if (mode != DIRECT_FORWARD) return a->dst_size;
    return r < a->dst_size ? (a->dst_size - r + a->stride - 1) / a->stride : 0;
}

__host__ __device__ inline direct_axis_plan direct_plan_axis(const direct_axis *a, int mode, int r)
{
    direct_axis_plan p = {0, 0, 0, 0u, 0};
    for (int k = 0; k < a->kernel; ++k) {
        int res, q;
        if (!direct_tap(a, mode, r, k, &res, &q)) continue;
        if (p.ntaps == 0 || q < p.qmin) p.qmin = q;
        if (p.ntaps == 0 || q > p.qmax) p.qmax = q;
        p.res |= 1u << res;
        ++p.ntaps;
    }
    p.count = direct_count(a, mode, r);
    return p;
}

/* Source rows (or columns) of a tile of `tile` destination indices; 0 without taps. */
__host__ __device__ inline int direct_span(const direct_axis_plan *p, int tile)
{
    return p->ntaps ? tile + p->qmax - p->qmin : 0;
}

__host__ __device__ inline int direct_popc(unsigned v)
{
    int n = 0;
    for (; v; v &= v - 1u) ++n;
    return n;
}

__host__ __device__ inline int direct_round4(int v) { return (v + 3) & ~3; }

/* Where the prepared weights of (phase, group, channel tile, chunk) start in the workspace. */
__host__ __device__ inline int64_t direct_weights_offset(const direct_params &P, int phase, int g, int cot, int chunk)
{
    return (((int64_t)g * P.co_tiles + cot) * P.phases_h * P.phases_w + phase) * P.nchunks * P.wchunk +
           (int64_t)chunk * P.wchunk;
}

/* Row pitch of a source tile of `cols` columns: odd, so that the 32 lanes of a warp (8 rows x
 * 4 column groups of 8) hit 32 banks with 4-byte loads; with `pairs` (FMA float tiles whose
 * tap groups all start at even columns, see direct_pairs) 2 mod 4, so that they hit 16 bank
 * pairs per half warp with 8-byte loads.  The warpgroup tile's rows are `wpitch` pixels, 64
 * (its tile width is chosen to fill them) or fewer in the last column strip (see
 * direct_shape_make). */
__host__ __device__ inline int direct_pitch(int cols, int mma, int wpitch, int pairs)
{
    return direct_is_wgmma(mma) ? wpitch : pairs ? cols + ((2 - cols % 4) & 3) : cols | 1;
}

/* Whether FMA tiles of `elem`-byte elements read their windows 8 bytes at a time: a kernel 3
 * wide at stride and dilation 1 makes every tap group 3 taps from column 0 of the tile's
 * rows (the 3-tap path of direct_fma), in both passes. */
__host__ __device__ inline int direct_pairs(const direct_axis *aw, int mma, int elem)
{
    return mma == DIRECT_FMA && elem == 4 && aw->kernel == 3 && aw->stride == 1 && aw->dilation == 1;
}

/* Elements of one reduction channel's source tile.  For mma.sync tiles the channel stride
 * is 8 mod 32 banks: the 4 channels of an mma fragment's k then sit in 4 disjoint bank
 * octets.  Warpgroup tiles interleave channels by quads instead (direct/wgmma.cuh). */
__host__ __device__ inline int direct_chan_elems(const direct_axis_plan *h, const direct_axis_plan *w, int th, int tw,
                                                 int mma, int wpitch, int pairs)
{
    const int planes = direct_popc(h->res) * direct_popc(w->res);
    const int chan = planes * direct_span(h, th) * direct_pitch(direct_span(w, tw), mma, wpitch, pairs);
    return (mma == DIRECT_MMA_TF32 || mma == DIRECT_MMA_3XTF32) && chan ? chan + ((8 - chan % 32) + 32) % 32 : chan;
}

/* The tap tables of a phase, built once per call (direct_prepare_weights) and copied into each
 * CTA's shared memory. */
struct direct_taps {
    int ngroups, ntaps;
    int rows, pitch, plane, chan;    /* source tile geometry, in elements */
    int nplanes;
    int qmin_h, qmin_w;
    int nres_w;
    int res_h[DIRECT_MAX_STRIDE], res_w[DIRECT_MAX_STRIDE]; /* residue of plane index */
    int group_off[DIRECT_MAX_TAPS];  /* offset of the group's first tap in a channel's tile */
    int group_tap[DIRECT_MAX_TAPS];  /* first tap slot (bits 0-15) and tap count (bits 16+) */
    int tap_k[DIRECT_MAX_TAPS];      /* kh*kW + kw of each tap slot */
    int tap_off[DIRECT_MAX_TAPS];    /* offset of each tap slot in a channel's tile */
};

/* Weight values a stage holds per (channel, tap, output channel): 3xTF32 keeps a big and
 * a small TF32 piece; 3xFP16's two FP16 pieces take the room of one. */
__host__ __device__ constexpr int direct_pieces(int mma) { return mma == DIRECT_MMA_3XTF32 ? 2 : 1; }

#endif /* TCONV_CUDA_DIRECT_GEOMETRY_CUH */
