using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The grouped SwiGLU experts on a device whose matrix units want bfloat16 operands: every expert's rows padded to one
/// row count (<see cref="PaddedGroups"/>), so each projection is one batched product over equal-sized groups. The
/// experts' rows are cast to bfloat16 once (<see cref="PadRows"/>), the weights once per forward
/// (<see cref="StackWeights"/>), the SwiGLU kernels read the products' float32 output and write bfloat16, and outputs
/// come back to the routed rows once (<see cref="UnpadRows"/>). A backend without it (the host) runs the experts
/// product by product through <see cref="IGemmKernels"/>.
/// </summary>
/// <remarks>
/// Layouts: padded rows are <c>[G·capacity, C]</c> with group g's rows first in its block and zeros after them; the
/// stacked gate and up weights are <c>[G, 2H, D]</c> (w1 then w3 per expert) and their products <c>[G·capacity, 2H]</c>
/// (gate then up per row). Products accumulate in float32; operands are bfloat16, so results agree with the float32
/// layer to about 1e-2.
/// </remarks>
public interface IPaddedExpertKernels
{
    /// <summary>The padded layout of these groups, or null when padding would add too many rows (the caller then
    /// runs the experts product by product).</summary>
    /// <param name="rowsPerGroup">Rows of each group, consecutive from row 0.</param>
    PaddedGroups? Plan(ReadOnlySpan<long> rowsPerGroup);

    /// <summary>float32 rows <c>[R, C]</c> into padded bfloat16 rows <c>[G·capacity, C]</c> (zeros after each
    /// group's rows).</summary>
    /// <param name="rows">Expert-major float32 rows.</param>
    /// <param name="layout">From <see cref="Plan"/>.</param>
    /// <param name="padded">bfloat16 output.</param>
    void PadRows(Tensor rows, PaddedGroups layout, Tensor padded);

    /// <summary>
    /// The dispatch gather straight into the padded layout: token t's float32 row, times
    /// <c>map.Scale[r]</c> when there is a scale (one float32 product), rounded once to bfloat16 into each of its
    /// rows <c>r = map.EntryRow[t·K + slot]</c> of <paramref name="padded"/>; rows whose <c>map.RowToken</c> is -1
    /// (SP pad entries, alignment and capacity padding) are zeros. The same bits as
    /// <see cref="IRowKernels.ScatterTokenRows"/> into float32 rows followed by <see cref="PadRows"/>, in one pass.
    /// </summary>
    /// <param name="tokens"><c>[*, D]</c> float32 token rows.</param>
    /// <param name="tokenRowOffset">Row of <paramref name="tokens"/> of token 0.</param>
    /// <param name="map">Where each token's rows go (rows of <paramref name="padded"/>) and their scale.</param>
    /// <param name="padded"><c>[rows, D]</c> bfloat16, one row per entry of <c>map.RowToken</c>.</param>
    void PlaceTokenRows(Tensor tokens, int tokenRowOffset, TokenScatter map, Tensor padded);

    /// <summary>float32 padded rows back into the routed rows <c>[R, C]</c> (added when
    /// <paramref name="accumulate"/>).</summary>
    /// <param name="padded">float32 <c>[G·capacity, C]</c>.</param>
    /// <param name="layout">From <see cref="Plan"/>.</param>
    /// <param name="rows">float32 output rows.</param>
    /// <param name="accumulate">Add instead of overwrite.</param>
    void UnpadRows(Tensor padded, PaddedGroups layout, Tensor rows, bool accumulate);

    /// <summary>bfloat16 copies of the weights: w1 and w3 stacked per expert into <paramref name="gateUp"/>
    /// <c>[G, 2H, D]</c>, w2 into <paramref name="down"/> <c>[G, D, H]</c>.</summary>
    /// <param name="w1">Gate projections <c>[G, H, D]</c> float32.</param>
    /// <param name="w3">Up projections <c>[G, H, D]</c> float32.</param>
    /// <param name="w2">Down projections <c>[G, D, H]</c> float32.</param>
    /// <param name="gateUp">bfloat16 output <c>[G, 2H, D]</c>.</param>
    /// <param name="down">bfloat16 output <c>[G, D, H]</c>.</param>
    void StackWeights(Tensor w1, Tensor w3, Tensor w2, Tensor gateUp, Tensor down);

    /// <summary>Per group g: <c>c[g] (+)= a[g] · b[g]ᵀ</c>, a bfloat16 <c>[G·capacity, K]</c>, b bfloat16
    /// <c>[G, N, K]</c>, c float32 <c>[G·capacity, N]</c>.</summary>
    /// <param name="a">Padded rows.</param>
    /// <param name="b">Weight stack.</param>
    /// <param name="c">Padded output rows.</param>
    /// <param name="layout">The groups.</param>
    /// <param name="shape">M ignored (the capacity), N, K.</param>
    /// <param name="accumulate">Add to <paramref name="c"/>.</param>
    void BatchedMatMulTransposeB(
        Tensor a,
        Tensor b,
        Tensor c,
        PaddedGroups layout,
        GemmShape shape,
        bool accumulate = false
    );

    /// <summary>Per group g: <c>c[g] (+)= a[g] · b[g]</c>, a bfloat16 <c>[G·capacity, K]</c>, b bfloat16
    /// <c>[G, K, N]</c>, c float32 <c>[G·capacity, N]</c>.</summary>
    /// <param name="a">Padded rows.</param>
    /// <param name="b">Weight stack.</param>
    /// <param name="c">Padded output rows.</param>
    /// <param name="layout">The groups.</param>
    /// <param name="shape">M ignored (the capacity), N, K.</param>
    /// <param name="accumulate">Add to <paramref name="c"/>.</param>
    void BatchedMatMul(Tensor a, Tensor b, Tensor c, PaddedGroups layout, GemmShape shape, bool accumulate = false);

    /// <summary>
    /// Per group g: <c>c[g] (+)= a[g]ᵀ · b[g]</c> over the group's padded rows, a bfloat16 with rows of
    /// <paramref name="aRowStride"/> values of which columns <c>[aColumn, aColumn + M)</c> are read, b bfloat16
    /// <c>[G·capacity, N]</c>, c float32 <c>[G, M, N]</c>. Padding rows are zero, so they add nothing.
    /// </summary>
    /// <param name="a">Padded rows (a column block of them).</param>
    /// <param name="aColumn">First column of <paramref name="a"/> read.</param>
    /// <param name="aRowStride">Values per row of <paramref name="a"/>.</param>
    /// <param name="b">Padded rows.</param>
    /// <param name="c">Gradient stack.</param>
    /// <param name="layout">The groups.</param>
    /// <param name="shape">M, N; K ignored (the capacity).</param>
    /// <param name="accumulate">Continue from <paramref name="c"/>.</param>
    void BatchedMatMulTransposeA(
        Tensor a,
        int aColumn,
        int aRowStride,
        Tensor b,
        Tensor c,
        PaddedGroups layout,
        GemmShape shape,
        bool accumulate = false
    );

    /// <summary><c>a = silu(g) ⊙ u</c> per row of the stacked products <paramref name="gateUp"/> (float32
    /// <c>[rows, 2H]</c>) into bfloat16 <paramref name="activation"/> <c>[rows, H]</c>.</summary>
    /// <param name="gateUp">Gate then up, per row.</param>
    /// <param name="activation">bfloat16 output.</param>
    void SwiGluForward(Tensor gateUp, Tensor activation);

    /// <summary>The SwiGLU backward of <see cref="SwiGluForward"/>: from <paramref name="gradActivation"/> (float32
    /// <c>[rows, H]</c>) and <paramref name="gateUp"/> into bfloat16 <paramref name="gradGateUp"/>
    /// <c>[rows, 2H]</c> (gate then up gradients per row).</summary>
    /// <param name="gradActivation">da.</param>
    /// <param name="gateUp">The forward's stacked products.</param>
    /// <param name="gradGateUp">bfloat16 output.</param>
    void SwiGluBackward(Tensor gradActivation, Tensor gateUp, Tensor gradGateUp);
}
