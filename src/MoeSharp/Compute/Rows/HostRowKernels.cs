using MoeSharp.Tensors;

namespace MoeSharp.Compute.Rows;

/// <summary>
/// The row kernels of <see cref="HostMoeKernels"/> for one row element type, and the one place that picks the
/// element type from a tensor's dtype. Each instance is a <see cref="HostRowKernels{TElement, TOps}"/>; a call costs
/// one virtual dispatch, then runs code the JIT compiled for that element type.
/// </summary>
internal abstract class HostRowKernels
{
    /// <summary>The kernels for rows of <paramref name="dtype"/>.</summary>
    /// <exception cref="NotSupportedException">No row element is defined for <paramref name="dtype"/>.</exception>
    public static HostRowKernels For(DType dtype) =>
        dtype switch
        {
            DType.Float32 => HostRowKernels<float, Float32Row>.Instance,
            DType.BFloat16 => HostRowKernels<BFloat16, BFloat16Row>.Instance,
            _ => throw new NotSupportedException(
                $"the host row kernels have no {dtype} rows (float32 and bfloat16 only)"
            ),
        };

    /// <inheritdoc cref="IRowKernels.GatherRows"/>
    public abstract void GatherRows(
        Tensor source,
        int sourceRowOffset,
        Tensor rowOf,
        Tensor? scale,
        Tensor destination
    );

    /// <inheritdoc cref="IRowKernels.ScatterTokenRows"/>
    public abstract void ScatterTokenRows(
        Tensor source,
        int sourceRowOffset,
        Tensor rowToken,
        Tensor entryRow,
        int topK,
        Tensor? scale,
        Tensor destination
    );

    /// <inheritdoc cref="IRowKernels.GatherReduce"/>
    public abstract void GatherReduce(
        Tensor rows,
        Tensor positions,
        Tensor? scale,
        Tensor? initial,
        Tensor destination,
        int destinationOffset
    );

    /// <summary>
    /// <see cref="GatherReduce"/> with the rows read where they are: the row of position <c>p</c> starts at address
    /// <paramref name="rowAddress"/>[p] (rows that other in-process ranks hold, read in place instead of copied here
    /// first). The same terms in the same order, so the same bits.
    /// </summary>
    public abstract void GatherReduceAt(
        nint[] rowAddress,
        Tensor positions,
        Tensor? scale,
        Tensor? initial,
        Tensor destination,
        int destinationOffset
    );

    /// <inheritdoc cref="IRowKernels.RowDots"/>
    public abstract void RowDots(
        Tensor a,
        Tensor aRow,
        Tensor b,
        int bRowOffset,
        int entriesPerBRow,
        Tensor result,
        int resultOffset
    );
}
