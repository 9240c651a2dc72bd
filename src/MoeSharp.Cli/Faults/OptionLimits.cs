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

    /// <summary>The timeout the option asks for, or null for the default.</summary>
    public static TimeSpan? ToTimeSpan(double? seconds) => seconds is double s ? TimeSpan.FromSeconds(s) : null;
}
