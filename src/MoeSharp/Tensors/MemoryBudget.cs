using System.Globalization;

namespace MoeSharp.Tensors;

/// <summary>
/// Checks sizes before allocation: element counts in 64-bit checked arithmetic against what a tensor can index,
/// and byte estimates against the host memory the machine has available, so an oversized problem is refused
/// with one message instead of growing until the kernel's OOM killer ends the process.
/// </summary>
public static class MemoryBudget
{
    /// <summary>
    /// The most elements one tensor holds: its storage is one .NET array, and an array holds at most
    /// <see cref="Array.MaxLength"/> (2147483591) elements, not <see cref="int.MaxValue"/> (a constant, so it is
    /// written out; a test pins it to <see cref="Array.MaxLength"/>).
    /// </summary>
    public const long MaxTensorElements = 0x7FFF_FFC7;

    /// <summary>
    /// Bytes of host memory available to this process now: Linux's <c>MemAvailable</c>, capped by the GC's limit (a
    /// container's).
    /// </summary>
    public static long AvailableHostBytes()
    {
        GCMemoryInfo info = GC.GetGCMemoryInfo();
        long limit = info.TotalAvailableMemoryBytes;
        long fromGc = Math.Max(0, limit - info.MemoryLoadBytes);
        long? meminfo = MemAvailable();
        return meminfo is long m ? Math.Min(m, limit) : fromGc;
    }

    /// <summary>
    /// Throws a <see cref="SizeLimitException"/> when <paramref name="neededBytes"/> exceeds the available host memory.
    /// </summary>
    /// <param name="neededBytes">The estimate.</param>
    /// <param name="what">Completes "needs N GB of host memory …", e.g. <c>per process</c> or <c>on rank 3</c>.</param>
    public static void EnsureHostFits(long neededBytes, string what)
    {
        long available = AvailableHostBytes();
        if (neededBytes > available)
        {
            throw new SizeLimitException(
                $"needs {FormatBytes(neededBytes)} of host memory {what}, {FormatBytes(available)} available",
                neededBytes,
                available
            );
        }
    }

    /// <summary>
    /// Throws a <see cref="SizeLimitException"/> when a tensor of <paramref name="elements"/> elements cannot exist.
    /// </summary>
    /// <param name="elements">The element count, computed in checked 64-bit arithmetic.</param>
    /// <param name="what">Names the tensor and where its size comes from.</param>
    public static void EnsureTensorFits(long elements, string what)
    {
        if (elements < 0 || elements > MaxTensorElements)
        {
            throw new SizeLimitException(
                $"{what} would hold {elements.ToString(CultureInfo.InvariantCulture)} elements, "
                    + $"more than the {MaxTensorElements.ToString(CultureInfo.InvariantCulture)} a tensor can index"
            );
        }
    }

    /// <summary>
    /// <paramref name="a"/> · <paramref name="b"/> in 64 bits; saturates at <see cref="long.MaxValue"/> instead of
    /// wrapping.
    /// </summary>
    public static long Multiply(long a, long b)
    {
        try
        {
            return checked(a * b);
        }
        catch (OverflowException)
        {
            return long.MaxValue;
        }
    }

    /// <summary>Bytes as a short figure: <c>41.2 GB</c>, <c>512 MB</c>, <c>3 KB</c> (decimal units).</summary>
    public static string FormatBytes(long bytes)
    {
        double b = bytes;
        return b switch
        {
            >= 1e12 => string.Create(CultureInfo.InvariantCulture, $"{b / 1e12:F1} TB"),
            >= 1e9 => string.Create(CultureInfo.InvariantCulture, $"{b / 1e9:F1} GB"),
            >= 1e6 => string.Create(CultureInfo.InvariantCulture, $"{b / 1e6:F0} MB"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{Math.Ceiling(b / 1e3):F0} KB"),
        };
    }

    private static long? MemAvailable()
    {
        try
        {
            if (!OperatingSystem.IsLinux())
                return null;
            foreach (string line in File.ReadLines("/proc/meminfo"))
            {
                if (!line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    continue;
                string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            // Fall back to the GC's view.
        }
        return null;
    }
}
