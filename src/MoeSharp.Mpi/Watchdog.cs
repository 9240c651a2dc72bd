namespace MoeSharp.Mpi;

/// <summary>
/// Ends the job when a collective outlives the group's timeout. A blocked MPI call cannot be cancelled, and a
/// peer that never arrives would hang every rank; aborting (as NCCL's watchdog does) turns that hang into a
/// job failure with a message naming the rank and the collective.
/// </summary>
internal readonly struct Watchdog : IDisposable
{
    private readonly Timer? _timer;

    private Watchdog(Timer timer) => _timer = timer;

    /// <summary>Arms a watchdog for <paramref name="operation"/>; infinite timeouts arm nothing.</summary>
    public static Watchdog Start(MpiRuntime runtime, TimeSpan timeout, string operation)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
            return default;
        var timer = new Timer(
            _ =>
                runtime.AbortJob(
                    $"rank {runtime.WorldRank}: {operation} did not complete within {timeout} (a peer failed or never arrived); aborting the MPI job"
                ),
            null,
            timeout,
            Timeout.InfiniteTimeSpan
        );
        return new Watchdog(timer);
    }

    /// <summary>Disarms the watchdog.</summary>
    public void Dispose() => _timer?.Dispose();
}
