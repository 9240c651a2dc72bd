using System.Runtime.InteropServices;

namespace MoeSharp.Mpi.Native;

/// <summary>Finds and loads the MPI shared library at run time and picks the matching ABI.</summary>
internal static class MpiLibrary
{
    /// <summary>Open MPI 3.x–5.x.</summary>
    public const string OpenMpiSoname = "libmpi.so.40";

    /// <summary>MPICH 3.1+ and its derivatives (Intel MPI, MVAPICH, Cray MPICH).</summary>
    public const string MpichSoname = "libmpi.so.12";

    /// <summary>Debian and Ubuntu ship MPICH under this name.</summary>
    public const string DebianMpichSoname = "libmpich.so.12";

    /// <summary>Environment variable naming a library (soname or path) to load instead of searching.</summary>
    public const string LibraryVariable = "MOESHARP_MPI_LIBRARY";

    /// <summary>
    /// Loads the MPI library. With both installed, the launcher decides: Open MPI's <c>mpiexec</c> sets
    /// <c>OMPI_COMM_WORLD_SIZE</c>, MPICH's Hydra sets <c>PMI_RANK</c>; loading the other one would make every
    /// process a singleton world of size 1.
    /// </summary>
    public static IMpiAbi Load()
    {
        string? forced = Environment.GetEnvironmentVariable(LibraryVariable);
        string[] candidates =
            !string.IsNullOrWhiteSpace(forced) ? [forced]
            : LaunchedByMpich() ? [MpichSoname, DebianMpichSoname, OpenMpiSoname]
            : [OpenMpiSoname, MpichSoname, DebianMpichSoname];

        foreach (string name in candidates)
        {
            if (NativeLibrary.TryLoad(name, out nint handle))
            {
                // The ABI is told by the library's exports rather than its name, so a forced path also works.
                return NativeLibrary.TryGetExport(handle, "ompi_mpi_comm_world", out _)
                    ? new OpenMpiAbi(handle, name)
                    : new MpichAbi(handle, name);
            }
        }

        throw new DllNotFoundException(
            $"No MPI library found: tried {string.Join(", ", candidates)}. Install Open MPI ({OpenMpiSoname}: "
                + $"apt-get install openmpi-bin libopenmpi-dev) or MPICH ({MpichSoname} / {DebianMpichSoname}: "
                + $"apt-get install mpich), or set {LibraryVariable} to the library's path."
        );
    }

    private static bool LaunchedByMpich() =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is null
        && (
            Environment.GetEnvironmentVariable("PMI_RANK") is not null
            || Environment.GetEnvironmentVariable("PMI_SIZE") is not null
        );
}
