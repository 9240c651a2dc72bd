using MoeSharp.Dispatch;

namespace MoeSharp.Cli.Commands;

/// <summary><c>--capacity-factor</c> and <c>--capacity-rows</c>: capacity mode (<see cref="DispatchCapacity"/>).
/// </summary>
internal static class CapacityOptions
{
    /// <summary>The capacity mode the options ask for, or null for the normal mode.</summary>
    /// <exception cref="ArgumentException">Both are given, or a value is out of range; the message names the
    /// option and its value.</exception>
    public static DispatchCapacity? Parse(double? factor, int? rows)
    {
        if (factor is not null && rows is not null)
            throw new ArgumentException($"--capacity-factor {factor} and --capacity-rows {rows}: give one of them");
        if (factor is double f)
        {
            if (!double.IsFinite(f) || f <= 0)
                throw new ArgumentException($"--capacity-factor {f} must be a finite number above 0");
            return DispatchCapacity.Factor(f);
        }
        if (rows is int r)
        {
            if (r < 1)
                throw new ArgumentException($"--capacity-rows {r} must be at least 1");
            return DispatchCapacity.RowsPerRank(r);
        }
        return null;
    }
}
