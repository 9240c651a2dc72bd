using Spectre.Console;

namespace MoeSharp.Cli.Commands;

/// <summary>Range checks shared by the commands that build a random dispatch problem.</summary>
internal static class RunCaseOptions
{
    /// <summary>Checks the problem options; each message names the option and its value.</summary>
    public static ValidationResult Check(
        int? world,
        int? sp,
        int? tokens,
        int? dim,
        int? experts,
        int? topK,
        int? align,
        double? timeoutSeconds
    )
    {
        if (world is < 1)
            return ValidationResult.Error($"--world {world} must be at least 1");
        if (sp is < 1)
            return ValidationResult.Error($"--sp {sp} must be at least 1");
        if (tokens is < 0)
            return ValidationResult.Error($"--tokens {tokens} must not be negative");
        if (dim is < 1)
            return ValidationResult.Error($"--dim {dim} must be at least 1");
        if (experts is < 1)
            return ValidationResult.Error($"--experts {experts} must be at least 1");
        if (topK is < 1)
            return ValidationResult.Error($"--top-k {topK} must be at least 1");
        if (align is < 1)
            return ValidationResult.Error($"--align {align} must be at least 1");
        return Faults.OptionLimits.Timeout(timeoutSeconds);
    }
}
