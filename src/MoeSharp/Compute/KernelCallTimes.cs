using System.Collections.Concurrent;
using System.Diagnostics;

namespace MoeSharp.Compute;

/// <summary>
/// Wall time and call count per kernel name, for the profiling decorators (<see cref="ProfilingMoeKernels"/>,
/// <see cref="ProfilingLayerKernels"/>): the device is synchronized before and after each timed call, so its device
/// work, and no one else's, is charged to it. Thread-safe.
/// </summary>
/// <param name="synchronize">Waits for all device work queued so far.</param>
internal sealed class KernelCallTimes(Action synchronize)
{
    private readonly ConcurrentDictionary<string, (double Seconds, int Calls)> _totals = new();

    /// <summary>Seconds and calls per kernel since the last <see cref="Reset"/>.</summary>
    public IReadOnlyDictionary<string, (double Seconds, int Calls)> Totals => _totals;

    /// <summary>Forgets the totals (after warm-up, say).</summary>
    public void Reset() => _totals.Clear();

    /// <summary>
    /// Runs <paramref name="call"/> synchronized on both sides and adds its time to <paramref name="name"/>.
    /// </summary>
    public void Time(string name, Action call) =>
        Time(
            name,
            () =>
            {
                call();
                return 0;
            }
        );

    /// <summary>
    /// Runs <paramref name="call"/> synchronized on both sides, adds its time to <paramref name="name"/> and returns
    /// its result.
    /// </summary>
    public T Time<T>(string name, Func<T> call)
    {
        synchronize();
        long start = Stopwatch.GetTimestamp();
        T result = call();
        synchronize();
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        _totals.AddOrUpdate(name, (seconds, 1), (_, t) => (t.Seconds + seconds, t.Calls + 1));
        return result;
    }
}
