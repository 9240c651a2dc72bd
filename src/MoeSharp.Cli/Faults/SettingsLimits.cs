using MoeSharp.Cli.Commands;
using MoeSharp.Verification;
using Spectre.Console;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// The limits each command's options must respect beyond their own ranges: the in-process rank limit and the memory
/// estimate. Called last from the settings' validation, once each option is known to be in range on its own.
/// </summary>
internal static class SettingsLimits
{
    /// <summary><c>moe run</c> (the embedded default cases are known to fit).</summary>
    public static ValidationResult Run(RunSettings s)
    {
        ValidationResult ranks = CommandMemory.InProcessRanks(s.World, s.Comm);
        if (!ranks.Successful || s.IsDefault)
            return ranks;
        RunCase c = RunCase.From(s);
        try
        {
            c.Validate();
        }
        catch (ArgumentException ex)
        {
            return ValidationResult.Error(ex.Message);
        }
        bool inProcess = CommKinds.Parse(s.Comm) == CommKind.InProcess;
        return CommandMemory.Run(c, inProcess, ComputeOptions.Parse(s.Device, s.Gpus));
    }

    /// <summary><c>moe bench</c>; <paramref name="dispatchers"/> dispatchers per rank hold their buffers at once.</summary>
    public static ValidationResult Bench(BenchSettings s, BenchShape shape, int dispatchers = 1)
    {
        ValidationResult ranks = CommandMemory.InProcessRanks(s.World, s.Comm);
        if (!ranks.Successful)
            return ranks;
        bool inProcess = CommKinds.Parse(s.Comm) == CommKind.InProcess;
        return CommandMemory.Bench(shape, s.World, inProcess, ComputeOptions.Parse(s.Device, s.Gpus), dispatchers);
    }

    /// <summary><c>moe train</c>.</summary>
    public static ValidationResult Train(TrainSettings s)
    {
        ValidationResult ranks = CommandMemory.InProcessRanks(s.World, s.Comm);
        if (!ranks.Successful)
            return ranks;
        bool inProcess = CommKinds.Parse(s.Comm) == CommKind.InProcess;
        var shape = new TrainShape(
            s.WorldOrDefault,
            s.Sp,
            s.Tokens,
            s.Dim,
            s.Hidden,
            s.Experts,
            s.TopK,
            s.SharedHidden,
            s.Load,
            s.Save
        );
        return CommandMemory.Train(shape, inProcess, ComputeOptions.Parse(s.Device, s.Gpus));
    }
}
