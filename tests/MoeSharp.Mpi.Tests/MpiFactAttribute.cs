namespace MoeSharp.Mpi.Tests;

/// <summary>
/// A fact that needs an MPI launcher and library. xunit 2 has no dynamic skip, so the skip reason is worked
/// out when the attribute is read: the test is skipped, with the reason, where MPI is not installed.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class MpiFactAttribute : FactAttribute
{
    /// <summary>Skips unless the default <c>mpiexec</c> (or <c>MOESHARP_MPIEXEC</c>) works.</summary>
    public MpiFactAttribute() => Skip = MpiLauncher.Default.SkipReason!;

    /// <summary>Skips unless MPICH's launcher works (it is optional beside Open MPI).</summary>
    public bool Mpich
    {
        get => _mpich;
        init
        {
            _mpich = value;
            Skip = (value ? MpiLauncher.Mpich : MpiLauncher.Default).SkipReason!;
        }
    }

    private readonly bool _mpich;
}
