using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MoeSharp.Cuda.Kernels;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// Kernels whose CUDA form the CPU accelerator cannot vouch for, compiled offline by ILGPU's PTX backend for an
/// H100/H200 (sm_90): the router's tiles (explicit groups, dynamic shared memory, fused pairs) and the multi-tensor
/// AdamW (a structure of array views as a parameter). A construct the PTX backend rejects fails here, not on the
/// GPU.
/// </summary>
public class PtxCompileTests
{
    [Theory]
    [InlineData(typeof(RouterKernelBodies), nameof(RouterKernelBodies.SoftmaxTiles), true)]
    [InlineData(typeof(RouterKernelBodies), nameof(RouterKernelBodies.SoftmaxBackwardTiles), true)]
    [InlineData(typeof(RouterKernelBodies), nameof(RouterKernelBodies.TopKTiles), true)]
    [InlineData(typeof(RouterKernelBodies), nameof(RouterKernelBodies.TopScoresBackwardTiles), true)]
    [InlineData(typeof(RouterKernelBodies), nameof(RouterKernelBodies.SoftmaxTopKTiles), true)]
    [InlineData(typeof(RouterKernelBodies), nameof(RouterKernelBodies.TopScoresSoftmaxBackwardTiles), true)]
    [InlineData(typeof(AdamWKernelBodies), nameof(AdamWKernelBodies.AdamWChunks), false)]
    [InlineData(typeof(PaddedExpertKernelBodies), nameof(PaddedExpertKernelBodies.SwiGluForwardTiled), false)]
    [InlineData(typeof(LayerKernelBodies), nameof(LayerKernelBodies.AddIntoTiled), false)]
    [InlineData(typeof(PaddedExpertKernelBodies), nameof(PaddedExpertKernelBodies.SwiGluBackwardTiled), false)]
    public void Kernel_CompilesToPtx(Type bodies, string kernel, bool explicitlyGrouped)
    {
        string ptx = Ptx(bodies, kernel, explicitlyGrouped);
        Assert.Contains(".entry", ptx);
        string? dump = Environment.GetEnvironmentVariable("MOESHARP_PTX_DUMP");
        if (dump is not null)
            File.WriteAllText(Path.Combine(dump, kernel + ".ptx"), ptx);
    }

    private static string Ptx(Type type, string kernelName, bool explicitlyGrouped)
    {
        using var context = Context.Create(builder => builder.Cuda().EnableAlgorithms());
        using var backend = new PTXBackend(
            context,
            new CudaCapabilityContext(CudaArchitecture.SM_90),
            CudaArchitecture.SM_90,
            CudaInstructionSet.ISA_80,
            null
        );
        MethodInfo method = type.GetMethod(kernelName, BindingFlags.Public | BindingFlags.Static)!;
        EntryPointDescription entry = explicitlyGrouped
            ? EntryPointDescription.FromExplicitlyGroupedKernel(method)
            : EntryPointDescription.FromImplicitlyGroupedKernel(method);
        var compiled = (PTXCompiledKernel)backend.Compile(entry, default);
        return compiled.PTXAssembly;
    }
}
