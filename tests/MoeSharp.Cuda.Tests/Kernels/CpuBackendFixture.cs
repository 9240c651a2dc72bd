namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// One ILGPU CPU-accelerator backend shared by the kernel tests: compiling the kernels once keeps the suite
/// fast. The tests that use it form one collection, so they never run concurrently on it.
/// </summary>
public sealed class CpuBackendFixture : IDisposable
{
    /// <summary>The shared backend.</summary>
    public IlgpuBackend Backend { get; } = IlgpuBackend.CreateCpu();

    /// <inheritdoc />
    public void Dispose() => Backend.Dispose();
}

/// <summary>The collection of tests that share <see cref="CpuBackendFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class CpuBackendCollection : ICollectionFixture<CpuBackendFixture>
{
    /// <summary>Collection name.</summary>
    public const string Name = "ilgpu-cpu";
}
