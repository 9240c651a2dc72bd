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

    /// <summary>Checks <c>--timeout</c>: finite, positive, at most <see cref="MaxTimeoutSeconds"/>.</summary>
    public static ValidationResult Timeout(double? seconds)
    {
        if (seconds is not double s)
            return ValidationResult.Success();
        if (!double.IsFinite(s) || s <= 0 || s > MaxTimeoutSeconds)
        {
            return ValidationResult.Error(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"--timeout {s} must be a number of seconds above 0 and at most {MaxTimeoutSeconds:F0}"
                )
            );
        }
        return ValidationResult.Success();
    }

    /// <summary>The timeout the option asks for, or null for the default.</summary>
    public static TimeSpan? ToTimeSpan(double? seconds) => seconds is double s ? TimeSpan.FromSeconds(s) : null;
}
