using MoeSharp.Cli.Commands;
using MoeSharp.Dispatch;
using MoeSharp.Verification;
using Spectre.Console;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// The limits each command's options must respect beyond their own ranges: the in-process rank limit and the memory
/// estimate. Called last from the settings' validation, once each option is known to be in range on its own.
/// </summary>
internal static class SettingsLimits
{
    /// <summary>
    /// <c>moe run</c>: its case, or with capacity mode the embedded default cases too (they are known to fit in the
    /// normal mode, but a capacity factor multiplies their slots).
    /// </summary>
    public static ValidationResult Run(RunSettings s)
    {
        ValidationResult ranks = CommandMemory.InProcessRanks(s.World, s.Comm);
        if (!ranks.Successful)
            return ranks;
        DispatchCapacity? capacity;
        try
        {
            capacity = CapacityOptions.Parse(s.CapacityFactor, s.CapacityRows);
        }
        catch (ArgumentException ex)
        {
            return ValidationResult.Error(ex.Message);
        }
        if (s.IsDefault && capacity is null)
            return ranks;
        bool inProcess = CommKinds.Parse(s.Comm) == CommKind.InProcess;
        IReadOnlyList<RunCase> cases = s.IsDefault ? RunCase.Defaults : [RunCase.From(s)];
        foreach (RunCase each in cases)
        {
            RunCase c = each with { Capacity = capacity };
            try
            {
                c.Validate();
            }
            catch (ArgumentException ex)
            {
                return ValidationResult.Error(ex.Message);
            }
            ValidationResult memory = CommandMemory.Run(c, inProcess, ComputeOptions.Parse(s.Device, s.Gpus));
            if (!memory.Successful)
                return memory;
        }
        return ValidationResult.Success();
    }

    /// <summary>
    /// <c>moe bench</c>; <paramref name="dispatchers"/> dispatchers per rank hold their buffers at once (with
    /// <c>--capacity-factor</c>/<c>--capacity-rows</c>, a capacity-mode one besides).
    /// </summary>
    public static ValidationResult Bench(BenchSettings s, BenchShape shape, int dispatchers = 1)
    {
        ValidationResult ranks = CommandMemory.InProcessRanks(s.World, s.Comm);
        if (!ranks.Successful)
            return ranks;
        bool inProcess = CommKinds.Parse(s.Comm) == CommKind.InProcess;
        return CommandMemory.Bench(
            shape,
            s.World,
            inProcess,
            ComputeOptions.Parse(s.Device, s.Gpus),
            dispatchers,
            CapacityOptions.Parse(s.CapacityFactor, s.CapacityRows)
        );
    }

    /// <summary><c>moe bench --uneven</c>, on the sweep <paramref name="sweep"/> resolved from the options.</summary>
    public static ValidationResult Uneven(BenchSettings s, UnevenBenchOptions sweep)
    {
        ValidationResult ranks = CommandMemory.InProcessRanks(sweep.World, s.Comm);
        if (!ranks.Successful)
            return ranks;
        bool inProcess = CommKinds.Parse(s.Comm) == CommKind.InProcess;
        return CommandMemory.Uneven(sweep, inProcess, ComputeOptions.Parse(s.Device, s.Gpus));
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
