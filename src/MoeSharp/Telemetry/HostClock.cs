using System.Diagnostics;

namespace MoeSharp.Telemetry;

/// <summary>
/// Which <see cref="Stopwatch"/> clock this process reads. Ranks whose domains match read one monotonic clock (the
/// same boot of the same machine: threads of one process, or processes on one host), so their timestamps can be
/// subtracted; ranks on different hosts cannot be compared that way.
/// </summary>
internal static class HostClock
{
    private static readonly Lazy<long> LazyDomain = new(ComputeDomain);

    /// <summary>A 64-bit identifier of the clock: equal on every rank that shares it.</summary>
    public static long Domain => LazyDomain.Value;

    /// <summary>Milliseconds from <paramref name="earlier"/> to <paramref name="later"/> (Stopwatch timestamps of
    /// one clock domain).</summary>
    public static double Milliseconds(long earlier, long later) => (later - earlier) * 1000.0 / Stopwatch.Frequency;

    private static long ComputeDomain()
    {
        // Linux's monotonic clock (the Stopwatch's source there) counts from the boot, so the boot's id names it;
        // elsewhere the machine's name is the best stand-in.
        string identity = Environment.MachineName;
        try
        {
            const string bootId = "/proc/sys/kernel/random/boot_id";
            if (File.Exists(bootId))
                identity = File.ReadAllText(bootId).Trim();
        }
        catch (IOException)
        {
            // Unreadable: keep the machine name.
        }
        catch (UnauthorizedAccessException)
        {
            // Likewise.
        }
        // FNV-1a over the identity and the clock's frequency: stable across processes (string.GetHashCode is not).
        ulong hash = 14695981039346656037UL;
        foreach (char c in identity + "/" + Stopwatch.Frequency)
            hash = (hash ^ c) * 1099511628211UL;
        return (long)hash;
    }
}
