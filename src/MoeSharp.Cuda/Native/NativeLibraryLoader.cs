using System.Runtime.InteropServices;

namespace MoeSharp.Cuda.Native;

/// <summary>
/// Loads a native library by soname (newest first) and resolves its exports. A missing library becomes a
/// <see cref="DllNotFoundException"/> that names every soname tried and what provides it, because the default
/// loader message ("unable to load shared library") does not say which package to install.
/// </summary>
internal static class NativeLibraryLoader
{
    /// <summary>Loads the first of <paramref name="sonames"/> that the dynamic loader finds.</summary>
    /// <param name="sonames">Candidate sonames, newest first.</param>
    /// <param name="provider">What installs the library, used in the error, e.g. "the CUDA 13 toolkit".</param>
    /// <param name="loadedName">The soname that loaded.</param>
    public static nint Load(IReadOnlyList<string> sonames, string provider, out string loadedName)
    {
        foreach (string name in sonames)
        {
            if (NativeLibrary.TryLoad(name, out nint handle))
            {
                loadedName = name;
                return handle;
            }
        }
        throw new DllNotFoundException(MissingMessage(sonames, provider));
    }

    /// <summary>The message for a library that none of <paramref name="sonames"/> found.</summary>
    public static string MissingMessage(IReadOnlyList<string> sonames, string provider) =>
        $"{string.Join(" / ", sonames)} not found: install {provider}, or put the folder holding it on LD_LIBRARY_PATH.";

    /// <summary>Resolves a required export; a missing one names the library (an older version lacks it).</summary>
    public static nint Export(nint library, string libraryName, string function) =>
        NativeLibrary.TryGetExport(library, function, out nint address)
            ? address
            : throw new EntryPointNotFoundException(
                $"{libraryName} has no export {function}: the library is older than MoeSharp needs."
            );

    /// <summary>Resolves an optional export (a function newer versions add); zero when absent.</summary>
    public static nint OptionalExport(nint library, string function) =>
        NativeLibrary.TryGetExport(library, function, out nint address) ? address : 0;
}
