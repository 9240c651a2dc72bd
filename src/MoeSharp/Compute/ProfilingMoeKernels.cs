using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// A decorator that times every kernel of another backend: each call is preceded and followed by
/// the device's <see cref="IComputeDevice.Synchronize"/> (<see cref="KernelCallTimes"/>) so asynchronous device work is
/// charged to the kernel that issued it. For finding where dispatch and combine spend their time; the extra
/// synchronization makes the total slower.
/// </summary>
/// <param name="inner">The backend to time.</param>
public sealed class ProfilingMoeKernels(IMoeKernels inner) : IMoeKernels, IEntryKernels, IRowKernels, IFp8RowKernels
{
    private readonly KernelCallTimes _times = new(inner.Device.Synchronize);

    /// <summary>Seconds and calls per kernel since the last <see cref="Reset"/>.</summary>
    public IReadOnlyDictionary<string, (double Seconds, int Calls)> Totals => _times.Totals;

    /// <summary>Forgets the totals (after warm-up, say).</summary>
    public void Reset() => _times.Reset();

    /// <inheritdoc />
    /// <remarks>The inner backend's device: transfers and waits are not timed as kernels.</remarks>
    public IComputeDevice Device => inner.Device;

    /// <inheritdoc />
    public IEntryKernels Entries => this;

    /// <inheritdoc />
    public IRowKernels Rows => this;

    /// <inheritdoc />
    public void Clear(Tensor tensor) => _times.Time(nameof(Clear), () => inner.Rows.Clear(tensor));

    /// <inheritdoc />
    public void CopyRows(Tensor source, int sourceRow, Tensor destination, int destinationRow, int rows) =>
        _times.Time(nameof(CopyRows), () => inner.Rows.CopyRows(source, sourceRow, destination, destinationRow, rows));

    /// <inheritdoc />
    public EntryScan PrepareEntries(ShardEntries shard, EntryColumns entries) =>
        _times.Time(nameof(PrepareEntries), () => inner.Entries.PrepareEntries(shard, entries));

    /// <inheritdoc />
    public void StableSortByExpert(Tensor expertIds, ReadOnlySpan<int> counts, Tensor order)
    {
        int[] copy = counts.ToArray();
        _times.Time(nameof(StableSortByExpert), () => inner.Entries.StableSortByExpert(expertIds, copy, order));
    }

    /// <inheritdoc />
    public void BuildPermutation(
        ReadOnlySpan<int> blockStart,
        ReadOnlySpan<int> blockDestination,
        Tensor expertMajorRowOf,
        Tensor rankMajorRowOf
    )
    {
        int[] starts = blockStart.ToArray(),
            destinations = blockDestination.ToArray();
        _times.Time(
            nameof(BuildPermutation),
            () => inner.Entries.BuildPermutation(starts, destinations, expertMajorRowOf, rankMajorRowOf)
        );
    }

    /// <inheritdoc />
    public void BuildLocalLayout(SortedEntries sortedEntries, LocalLayoutMaps maps) =>
        _times.Time(nameof(BuildLocalLayout), () => inner.Entries.BuildLocalLayout(sortedEntries, maps));

    /// <inheritdoc />
    public void GatherRows(Tensor source, int sourceRowOffset, Tensor rowOf, Tensor? scale, Tensor destination) =>
        _times.Time(
            nameof(GatherRows),
            () => inner.Rows.GatherRows(source, sourceRowOffset, rowOf, scale, destination)
        );

    /// <inheritdoc />
    public void ScanEntries(ShardEntries shard, EntryColumns entries, Tensor scan, int scanOffset) =>
        _times.Time(nameof(ScanEntries), () => inner.Entries.ScanEntries(shard, entries, scan, scanOffset));

    /// <inheritdoc />
    public void PackCountMessages(Tensor scan, int scanOffset, CountMessages messages, Tensor send) =>
        _times.Time(nameof(PackCountMessages), () => inner.Entries.PackCountMessages(scan, scanOffset, messages, send));

    /// <inheritdoc />
    public void ScatterTokenRows(Tensor source, int sourceRowOffset, TokenScatter map, Tensor destination) =>
        _times.Time(
            nameof(ScatterTokenRows),
            () => inner.Rows.ScatterTokenRows(source, sourceRowOffset, map, destination)
        );

    /// <inheritdoc />
    public void GatherReduce(TokenGather gather, Tensor destination, int destinationOffset) =>
        _times.Time(nameof(GatherReduce), () => inner.Rows.GatherReduce(gather, destination, destinationOffset));

    /// <inheritdoc />
    public void RowDots(RowPairs pairs, Tensor result, int resultOffset) =>
        _times.Time(nameof(RowDots), () => inner.Rows.RowDots(pairs, result, resultOffset));

    /// <inheritdoc />
    /// <remarks>The inner backend's FP8 kernels (its own, or the host's for host tensors), timed.</remarks>
    /// <exception cref="NotSupportedException">The inner backend lives off the host and has no FP8 kernels.</exception>
    public void QuantizeRows(Tensor rows, Tensor wire) =>
        _times.Time(nameof(QuantizeRows), () => InnerFp8.QuantizeRows(rows, wire));

    /// <inheritdoc />
    /// <exception cref="NotSupportedException">The inner backend lives off the host and has no FP8 kernels.</exception>
    public void DequantizeRows(Tensor wire, Tensor rows) =>
        _times.Time(nameof(DequantizeRows), () => InnerFp8.DequantizeRows(wire, rows));

    private IFp8RowKernels InnerFp8 =>
        inner as IFp8RowKernels
        ?? (
            inner.Device.IsHost
                ? HostFp8RowKernels.Instance
                : throw new NotSupportedException(
                    $"the profiled backend on {inner.Device.Name} ({inner.GetType().Name}) has no FP8 row kernels"
                )
        );
}
