using System.Globalization;
using Spectre.Console;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// Explicit limits on options that size things or wait: checked at validation, before any rank starts.
/// </summary>
internal static class OptionLimits
{
    /// <summary>
    /// The longest <c>--timeout</c>: a collective's wait is int.MaxValue milliseconds at most (about 24.8 days).
    /// </summary>
    public const double MaxTimeoutSeconds = int.MaxValue / 1000.0;

    /// <summary>
    /// The shortest <c>--timeout</c>, 1 ms: a collective waits whole milliseconds, and a shorter positive timeout
    /// would become 0 (a library error, or every golden file "unreadable").
    /// </summary>
    public const double MinTimeoutSeconds = 0.001;

    /// <summary>
    /// Checks <c>--timeout</c>: finite, from <see cref="MinTimeoutSeconds"/> to <see cref="MaxTimeoutSeconds"/>.
    /// </summary>
    public static ValidationResult Timeout(double? seconds)
    {
        if (seconds is not double s)
            return ValidationResult.Success();
        if (!double.IsFinite(s) || s < MinTimeoutSeconds || s > MaxTimeoutSeconds)
        {
            return ValidationResult.Error(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"--timeout {s} must be a number of seconds from {MinTimeoutSeconds} to {MaxTimeoutSeconds:F0}"
                )
            );
        }
        return ValidationResult.Success();
    }

    /// <summary>
    /// The most untimed or timed runs of a benchmark (<c>--warmup</c>, <c>--repeats</c>): a million runs of the
    /// smallest measurement already take minutes, and warmup + repeats stays far from int.MaxValue.
    /// </summary>
    public const int MaxRuns = 1_000_000;

    /// <summary>
    /// The most <c>train --steps</c>: the trainer keeps one loss per step (8 bytes each, 80 MB at this bound).
    /// </summary>
    public const int MaxSteps = 10_000_000;

    /// <summary>The most timed rounds of <c>bench-cpu</c>'s FMA peak probe (about 10 ms each per width).</summary>
    public const int MaxProbeRounds = 1000;

    /// <summary>The most FMA pipes per core, or float32 lanes per pipe, <c>bench-cpu</c> may assume.</summary>
    public const int MaxFmaUnitsOrLanes = 64;

    /// <summary>The highest core clock <c>bench-cpu --ghz</c> takes: no CPU runs its cores at 10 GHz.</summary>
    public const double MaxGhz = 10;

    /// <summary>Checks that a count option is at most <paramref name="max"/>.</summary>
    /// <param name="option">The option, e.g. <c>--repeats</c>.</param>
    /// <param name="value">Its value.</param>
    /// <param name="max">The largest value it takes.</param>
    public static ValidationResult AtMost(string option, long value, long max) =>
        value > max
            ? ValidationResult.Error(
                string.Create(CultureInfo.InvariantCulture, $"{option} {value} must be at most {max}")
            )
            : ValidationResult.Success();

    /// <summary>The timeout the option asks for, or null for the default.</summary>
    public static TimeSpan? ToTimeSpan(double? seconds) => seconds is double s ? TimeSpan.FromSeconds(s) : null;
}
