namespace MoeSharp.Compute;

/// <summary>
/// Splits a loop over items into contiguous chunks run on the host kernels' team (<see cref="HostWorkerTeam"/>; the
/// thread pool while another caller holds it), serially when the work is too small to pay for the hand-off. Chunking
/// never changes results: kernels assign each output to exactly one item and compute it the same way in any chunk.
/// </summary>
internal static class HostParallel
{
    /// <summary>Below this many bytes touched, a kernel runs on the calling thread.</summary>
    private const long SerialThresholdBytes = 1 << 18;

    /// <summary>Runs <paramref name="body"/>(start, end) over <c>[0, count)</c> in chunks.</summary>
    /// <param name="count">Items.</param>
    /// <param name="bytesPerItem">Rough bytes each item touches, to size chunks.</param>
    /// <param name="body">Processes items <c>[start, end)</c>.</param>
    public static void For(int count, long bytesPerItem, Action<int, int> body)
    {
        if (count <= 0)
            return;
        long total = count * Math.Max(1, bytesPerItem);
        int workers = HostThreads.Current;
        if (workers == 1 || total < SerialThresholdBytes || count == 1)
        {
            body(0, count);
            return;
        }
        // A few chunks per core balances uneven rows without paying per-row scheduling.
        int chunks = (int)Math.Min(count, Math.Min(workers * 4L, Math.Max(1, total / (SerialThresholdBytes / 4))));
        HostWorkerTeam.For(
            chunks,
            workers,
            c =>
            {
                int start = (int)((long)count * c / chunks);
                int end = (int)((long)count * (c + 1) / chunks);
                body(start, end);
            }
        );
    }
}
