// One MPI rank of a test scenario: run as `mpiexec -n N dotnet MoeSharp.Mpi.Driver.dll <scenario>`.
// Each rank checks its own results against values it can compute alone and throws on a mismatch, which
// RunOrAbort turns into a job abort; a clean run prints "rank R ok" per rank and exits 0.
using MoeSharp.Collectives;
using MoeSharp.Mpi;
using MoeSharp.Mpi.Driver;

string scenario = args.Length > 0 ? args[0] : "collectives";
switch (scenario)
{
    case "collectives":
        return Run(MpiProcessGroup.InitWorld(TimeSpan.FromMinutes(2)), Scenarios.All);
    case "collectives-large":
        // Tiny limits push every exchange through the large-message path (point-to-point pieces, staging).
        return Run(
            MpiProcessGroup.InitWorldWithLimits(
                TimeSpan.FromMinutes(2),
                new ExchangeLimits(MaxCollectiveBytes: 64, PieceBytes: 7)
            ),
            Scenarios.All
        );
    case "huge":
        return Run(MpiProcessGroup.InitWorld(TimeSpan.FromMinutes(10)), Scenarios.Huge);
    case "timeout":
        // Rank 1 never enters the barrier: the others' watchdog must end the job after 2 s.
        return MpiProcessGroup.RunOrAbort(Scenarios.Stall, TimeSpan.FromSeconds(2));
    case "fail":
        return MpiProcessGroup.RunOrAbort(Scenarios.Fail, TimeSpan.FromMinutes(2));
    default:
        Console.Error.WriteLine($"unknown scenario '{scenario}'");
        return 2;
}

static int Run(MpiProcessGroup world, Action<IProcessGroup> body)
{
    using (world)
    {
        try
        {
            body(world);
            Console.WriteLine($"rank {world.Rank} ok ({world.Implementation}, {world.ThreadLevel})");
        }
        catch (Exception ex)
        {
            world.Abort(ex);
        }
    }
    return 0;
}
